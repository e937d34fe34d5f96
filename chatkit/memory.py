"""Measuring memory: what a loaded model really takes, the peak while loading, the KV cache, what fits.

`chatkit.sizing` estimates memory from a config (no weights); this module measures real models and
compares. It also guards loading: `check_fits()` estimates the need before any weight is read and
refuses, naming the smaller options, when the machine cannot hold it (`chatkit.load_model` calls it).

- `footprint_breakdown(model)` / `model_footprint(model)`: bytes of every tensor the model holds, per
  storage dtype, including bitsandbytes' quantization state (the per-block scales of 4-bit weights, the
  per-row scales of 8-bit ones), which `model.get_memory_footprint()` does not count.
- `PeakMemory`: the peak memory while a block runs (CPU: the process's resident memory, sampled by a
  thread and, on Linux, read exactly from the kernel's high-water mark; GPU: torch's peak allocation).
- `machine_memory()`: the memory a model can use here: GPU memory when there is a GPU, else system RAM.
- `cache_bytes(cache)` / `measure_kv_cache(...)`: the KV cache measured after a forward pass, next to
  `chatkit.sizing.kv_cache_bytes`: 2 × layers × kv_heads × head_dim × bytes per value × tokens.
- `check_fits(...)`, `NotEnoughMemoryError`: the memory guard `chatkit.load_model` uses.
- `disable_bnb_cpu_repacking(model)`: keeps bitsandbytes' 4-bit layers on the portable CPU path.

Example:
    >>> with PeakMemory() as peak:                               # doctest: +SKIP
    ...     model, tokenizer = chatkit.load_model(path)
    >>> peak.increase_bytes, model_footprint(model)              # doctest: +SKIP
"""

import os
import sys
import threading
from dataclasses import dataclass, replace

GiB = 2**30
MiB = 2**20


def format_bytes(n):
    """A byte count for people: "37.1 GiB", "2.6 MiB", "980 B" (binary units, as memory is sold)."""
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", 2**10)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


# ----------------------------------------------------------------------------- footprint


def _quant_state_tensors(param):
    """The tensors bitsandbytes keeps beside a quantized weight (not parameters, not buffers)."""
    found = []
    scb = getattr(param, "SCB", None)  # 8-bit: one float32 scale per output row
    if scb is not None:
        found.append(scb)
    state = getattr(param, "quant_state", None)  # 4-bit: scales per block of 64, the code table
    while state is not None:
        for attr in ("absmax", "code", "offset"):
            value = getattr(state, attr, None)
            if hasattr(value, "untyped_storage"):
                found.append(value)
        state = getattr(state, "state2", None)  # double quantization: the scales' own scales
    return found


def footprint_breakdown(model):
    """Bytes the model's tensors hold, as `{storage dtype: bytes}`, plus `"quant_state"` if quantized.

    Counts parameters and buffers once each (tied weights share storage) and the quantization state
    of bitsandbytes layers. Tensors on the meta device (not allocated) count nothing.

    Example:
        >>> footprint_breakdown(model)            # doctest: +SKIP
        {'bfloat16': 516608, 'uint8': 1449984, 'quant_state': 183040}
    """
    seen, sizes = set(), {}

    def add(tensor, key):
        if tensor.device.type == "meta":
            return
        storage = tensor.untyped_storage()
        ident = (tensor.device.type, storage.data_ptr(), tensor.storage_offset(), tensor.nbytes)
        if ident in seen:
            return
        seen.add(ident)
        sizes[key] = sizes.get(key, 0) + tensor.nelement() * tensor.element_size()

    for param in model.parameters():
        add(param, str(param.dtype).removeprefix("torch."))
        for state in _quant_state_tensors(param):
            add(state, "quant_state")
    for buffer in model.buffers():
        add(buffer, str(buffer.dtype).removeprefix("torch."))
    return sizes


def model_footprint(model):
    """Total bytes of `footprint_breakdown(model)`: what the loaded model really holds in memory."""
    return sum(footprint_breakdown(model).values())


# ----------------------------------------------------------------------------- the machine


@dataclass(frozen=True)
class MachineMemory:
    """Memory a model can use on this machine: `device` ('cuda' or 'cpu'), total and available bytes."""

    device: str
    total_bytes: int
    available_bytes: int

    def describe(self):
        where = "GPU memory" if self.device == "cuda" else "system RAM"
        return (
            f"{where}: {format_bytes(self.available_bytes)} available of {format_bytes(self.total_bytes)}"
        )


def _system_ram():
    """(total, available) bytes of system RAM: psutil when installed, else /proc/meminfo, else sysconf."""
    try:
        import psutil

        vm = psutil.virtual_memory()
        return vm.total, vm.available
    except ImportError:
        pass
    try:
        info = {}
        with open("/proc/meminfo") as f:
            for line in f:
                key, value = line.split(":", 1)
                info[key] = int(value.split()[0]) * 1024
        return info["MemTotal"], info.get("MemAvailable", info["MemFree"])
    except (OSError, KeyError, ValueError):
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        return total, total


def machine_memory(device=None):
    """A `MachineMemory` for the GPU (`torch.cuda.mem_get_info`) when there is one, else system RAM.

    `device="cpu"` forces system RAM; `device="cuda"` requires a GPU.
    """
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device='cuda' was asked for but torch sees no CUDA GPU; use device='cpu'.")
        free, total = torch.cuda.mem_get_info()
        return MachineMemory("cuda", total, free)
    if device != "cpu":
        raise ValueError(f"device must be 'cuda', 'cpu' or None (pick automatically), not {device!r}.")
    total, available = _system_ram()
    return MachineMemory("cpu", total, available)


# ----------------------------------------------------------------------------- peak memory


def _rss_bytes():
    """Resident memory of this process now: psutil when installed, else /proc/self/statm."""
    try:
        import psutil

        return psutil.Process().memory_info().rss
    except ImportError:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def release_free_memory():
    """Collect garbage and hand freed heap memory back to the OS (glibc's malloc_trim on Linux).

    Freed memory that the C allocator keeps counts in the resident memory and is reused silently;
    a measurement that starts after this sees what the measured block itself needs.
    """
    import gc

    gc.collect()
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to trim
            pass


def _reset_high_water_mark():
    """Reset the kernel's peak-RSS counter (Linux ≥ 4.0); True when it worked."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _high_water_mark():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


class PeakMemory:
    """Context manager: the peak memory while its block runs, not only what is left afterwards.

    CPU: the resident memory (RSS) of this process. A thread samples it every `interval` seconds;
    on Linux the kernel's high-water mark is also reset on entry and read on exit, which catches
    spikes shorter than the interval. GPU (`device="cuda"`): `torch.cuda.max_memory_allocated`
    after `reset_peak_memory_stats`, i.e. tensors only (the CUDA context is not counted).

    After the block: `start_bytes`, `end_bytes`, `peak_bytes` and `increase_bytes` (peak - start).
    With `release=True` (default) garbage is collected and freed heap memory returned to the OS
    first (`release_free_memory`), so the start is not inflated by memory the block would reuse.
    Other threads of the process count too: measure in a quiet process.
    """

    def __init__(self, device="cpu", interval=0.001, release=True):
        if device not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda', not {device!r}.")
        if interval <= 0:
            raise ValueError(f"interval must be a positive number of seconds, not {interval!r}.")
        self.device, self.interval, self.release = device, interval, release
        self.start_bytes = self.end_bytes = self.peak_bytes = None
        self.samples = 0
        self.exact = False  # True when the kernel's high-water mark was used (Linux)

    def _sample(self):
        while not self._stop.is_set():
            self._sampled_peak = max(self._sampled_peak, _rss_bytes())
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self):
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.start_bytes = torch.cuda.memory_allocated()
            return self
        if self.release:
            release_free_memory()
        self.start_bytes = _rss_bytes()
        self._sampled_peak = self.start_bytes
        self.exact = _reset_high_water_mark()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()
            self.end_bytes = torch.cuda.memory_allocated()
            self.peak_bytes = torch.cuda.max_memory_allocated()
            return False
        self._stop.set()
        self._thread.join()
        self.end_bytes = _rss_bytes()
        peak = max(self._sampled_peak, self.end_bytes)
        if self.exact:
            peak = max(peak, _high_water_mark())
        self.peak_bytes = peak
        return False

    @property
    def increase_bytes(self):
        """Peak minus the memory in use when the block started."""
        return self.peak_bytes - self.start_bytes


# ----------------------------------------------------------------------------- KV cache


def cache_bytes(cache):
    """Bytes held by a KV cache: a transformers `Cache` (`DynamicCache`, `StaticCache`...) or legacy tuples."""
    import torch

    total = 0
    layers = getattr(cache, "layers", None)
    if layers is not None:
        for layer in layers:
            for name in ("keys", "values"):
                tensor = getattr(layer, name, None)
                if isinstance(tensor, torch.Tensor):
                    total += tensor.nelement() * tensor.element_size()
        return total
    if isinstance(cache, (tuple, list)):
        for item in cache:
            if isinstance(item, torch.Tensor):
                total += item.nelement() * item.element_size()
            else:
                total += cache_bytes(item)
        return total
    raise ValueError(
        f"cache_bytes needs a transformers Cache or a tuple of tensors, not {type(cache).__name__}."
    )



@dataclass(frozen=True)
class KVCacheMeasurement:
    """The KV cache after a forward pass over `tokens` tokens: measured bytes and the formula's."""

    tokens: int
    batch_size: int
    measured_bytes: int
    formula_bytes: int


def _compute_dtype(model):
    """The dtype activations (and so the KV cache) have: that of the input embeddings."""
    return model.get_input_embeddings().weight.dtype


def measure_kv_cache(model, context_lengths, batch_size=1):
    """Run one forward pass per context length and measure the KV cache it leaves, next to the formula.

    The formula is `chatkit.sizing.kv_cache_bytes(model.config, tokens, batch_size, dtype)` with the
    dtype of the model's activations. Returns a list of `KVCacheMeasurement`.

    Example:
        >>> [m.measured_bytes for m in measure_kv_cache(model, [64, 128])]   # doctest: +SKIP
        [65536, 131072]
    """
    import torch

    from .sizing import kv_cache_bytes

    lengths = list(context_lengths)
    if not lengths or any(not isinstance(n, int) or n < 1 for n in lengths):
        raise ValueError(f"context_lengths must be positive whole numbers of tokens, got {context_lengths!r}.")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a whole number ≥ 1, got {batch_size!r}.")
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit and max(lengths) > limit:
        raise ValueError(f"context length {max(lengths)} exceeds the model's max_position_embeddings ({limit}).")
    dtype = _compute_dtype(model)
    device = model.get_input_embeddings().weight.device
    generator = torch.Generator().manual_seed(0)
    results = []
    for tokens in lengths:
        ids = torch.randint(0, model.config.vocab_size, (batch_size, tokens), generator=generator).to(device)
        with torch.no_grad():
            output = model(ids, use_cache=True)
        measured = cache_bytes(output.past_key_values)
        del output
        formula = kv_cache_bytes(model.config, tokens, batch_size, dtype=dtype)
        results.append(KVCacheMeasurement(tokens, batch_size, measured, formula))
    return results


# ----------------------------------------------------------------------------- the memory guard


class NotEnoughMemoryError(MemoryError):
    """Loading a model would need more memory than this machine has; the message names smaller options."""


# What the guard suggests, smallest memory last, with the from_pretrained arguments that load each.
SMALLER_OPTIONS = (
    ("bf16", "dtype=torch.bfloat16"),
    ("int8", "quantization_config=BitsAndBytesConfig(load_in_8bit=True), dtype=torch.float16"),
    ("4bit", 'quantization_config=BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", '
             "bnb_4bit_use_double_quant=True), dtype=torch.bfloat16"),
)


def _quantization_key(quantization_config):
    """("int8" | "4bit" | None, double_quant) for a BitsAndBytesConfig or its dict; ValueError otherwise."""
    if quantization_config is None:
        return None, False
    get = quantization_config.get if isinstance(quantization_config, dict) else (
        lambda name, default=None: getattr(quantization_config, name, default))
    method = get("quant_method", "bitsandbytes")
    method = str(getattr(method, "value", method))  # transformers keeps an enum here
    if "bitsandbytes" not in method.lower():
        raise ValueError(f"the memory guard sizes bitsandbytes quantization only, not {method!r}.")
    if get("load_in_8bit", False):
        return "int8", False
    if get("load_in_4bit", False):
        return "4bit", bool(get("bnb_4bit_use_double_quant", False))
    return None, False


def _checkpoint_dtype(config):
    """The dtype a checkpoint was saved in (what dtype="auto" loads), "fp32" when the config is silent."""
    from .sizing import normalize_dtype

    saved = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    try:
        return normalize_dtype(saved) if saved is not None else "fp32"
    except ValueError:
        return "fp32"


def loading_estimate(model, dtype="auto", quantization_config=None, *, config=None,
                     context_length=None, overhead=None):
    """`chatkit.sizing.estimate_memory` for what `from_pretrained(model, dtype=..., quantization_config=...)` loads.

    model: a model name or folder (or a transformers config); `config` skips reading it again.
    dtype: "auto" (the checkpoint's dtype), a torch dtype or a name ("bf16", "float16"...).
    """
    from .sizing import DEFAULT_CONTEXT_LENGTH, DEFAULT_OVERHEAD, as_config, estimate_memory, normalize_dtype

    if config is None:
        config = model if not isinstance(model, (str, os.PathLike)) else as_config(str(model))
    base = _checkpoint_dtype(config) if dtype in (None, "auto") else normalize_dtype(dtype)
    quantized, double_quant = _quantization_key(quantization_config)
    if quantized and base not in ("fp32", "bf16", "fp16"):
        raise ValueError(f"with quantization_config, dtype must be a float dtype (bf16, fp16, fp32), not {dtype!r}.")
    estimate = estimate_memory(
        config,
        quantized or base,
        context_length=DEFAULT_CONTEXT_LENGTH if context_length is None else context_length,
        overhead=DEFAULT_OVERHEAD if overhead is None else overhead,
        base_dtype=base if quantized else "bf16",
        double_quant=double_quant,
    )
    if isinstance(model, (str, os.PathLike)):
        from .loading import describe_model

        estimate = replace(estimate, model=describe_model(str(model)))
    return estimate


def check_fits(model, dtype="auto", quantization_config=None, *, config=None, available_bytes=None,
               device=None, context_length=None, overhead=None, allow_oversize=False):
    """The memory guard: estimate what loading needs and refuse when this machine cannot hold it.

    Returns the `MemoryEstimate` (weights + KV cache for `context_length` tokens + overhead; the
    defaults of `chatkit.sizing.estimate_memory`). Raises `NotEnoughMemoryError`, naming the smaller
    options (bf16, 8-bit, 4-bit, a smaller model) and how to load each, when the estimate exceeds
    `available_bytes` (default: `machine_memory(device).available_bytes`, GPU memory when there is a
    GPU, else system RAM), unless `allow_oversize=True`.

    Example:
        >>> check_fits("meta-llama/Meta-Llama-3-8B-Instruct", "fp32", available_bytes=16 * 2**30)  # doctest: +SKIP
        Traceback (most recent call last):
        NotEnoughMemoryError: Loading meta-llama/Meta-Llama-3-8B-Instruct in fp32 needs about 37.1 GiB ...
    """
    from .loading import DEFAULT_HUB_MODEL

    if config is None and isinstance(model, (str, os.PathLike)):
        from .sizing import as_config

        config = as_config(str(model))
    estimate = loading_estimate(model, dtype, quantization_config, config=config,
                                context_length=context_length, overhead=overhead)
    if available_bytes is None:
        machine = machine_memory(device)
        available_bytes, where = machine.available_bytes, machine.describe()
    else:
        where = f"{format_bytes(available_bytes)} available (as given)"
    if estimate.total <= available_bytes or allow_oversize:
        return estimate

    from .loading import describe_model

    if isinstance(model, (str, os.PathLike)):
        label = str(model)
    else:  # a config: its name_or_path when it has one
        label = getattr(model, "name_or_path", "") or "the model"

    lines = [
        f"Loading {describe_model(label)} in {estimate.dtype} needs about {format_bytes(estimate.total)} "
        f"(weights {format_bytes(estimate.weights)} + KV cache for {estimate.context_length:,} tokens "
        f"{format_bytes(estimate.kv_cache)} + {estimate.overhead_fraction:.0%} overhead), but this machine "
        f"has {where}. Smaller options:"
    ]
    order = [key for key, _ in SMALLER_OPTIONS]
    asked = "bf16" if estimate.dtype == "fp16" else estimate.dtype  # same size: suggest what is smaller
    start = order.index(asked) + 1 if asked in order else 0
    for key, how in SMALLER_OPTIONS[start:]:
        option = loading_estimate(model, "bf16" if key != "int8" else "fp16",
                                  None if key == "bf16" else _option_config(key),
                                  config=config, context_length=context_length, overhead=overhead)
        verdict = "fits" if option.total <= available_bytes else "does not fit either"
        lines.append(f"- {key}: about {format_bytes(option.total)} ({verdict}): {how}")
    lines.append(
        f"- a smaller model, e.g. {DEFAULT_HUB_MODEL!r} or chatkit.embedded_model_path() (offline); "
        "chatkit.sizing.fit_table() compares models."
    )
    lines.append("To load anyway (it may swap, crash or be killed), pass allow_oversize=True.")
    raise NotEnoughMemoryError("\n".join(lines))


def guard_loading(model, config, dtype="auto", quantization_config=None, device_map=None,
                  allow_oversize=False):
    """What `chatkit.load_model` runs before reading weights: `check_fits`, skipped where it cannot judge.

    Returns the estimate, or None when the architecture cannot be sized (a model type sizing cannot
    build, a quantization method other than bitsandbytes, e.g. a GPTQ or AWQ checkpoint): then
    loading proceeds unguarded. A checkpoint saved quantized is sized as its config says.
    """
    if allow_oversize:
        return None
    if quantization_config is None:
        quantization_config = getattr(config, "quantization_config", None)
    try:
        loading_estimate(model, dtype, quantization_config, config=config)
    except Exception:  # the guard is advisory: what sizing cannot size must still load
        return None
    device = "cpu" if device_map in ("cpu", {"": "cpu"}) else None
    return check_fits(model, dtype, quantization_config, config=config, device=device)


def _option_config(key):
    if key == "int8":
        return {"load_in_8bit": True}
    return {"load_in_4bit": True, "bnb_4bit_use_double_quant": True}

# ----------------------------------------------------------------------------- bitsandbytes on CPU


def disable_bnb_cpu_repacking(model):
    """Keep bitsandbytes' 4-bit layers on their portable CPU path; return how many layers were changed.

    On CPUs with AVX512-BF16, bitsandbytes (0.50) repacks each 4-bit weight for a faster kernel at
    its first forward pass. That path (1) fails with "N must be divisible by block_n" when a layer's
    output size is not a multiple of 32 (toy models like chatkit's embedded one; real models are
    fine), (2) undoes double quantization, so the footprint measured after loading grows at the first
    forward, and (3) exists only on some CPUs, so outputs differ between machines. Calling this keeps
    every 4-bit layer on the path all CPUs share. GPU layers and non-4-bit models are left alone.
    """
    changed = 0
    for module in model.modules():
        if getattr(module, "support_avx512bf16_for_cpu", False):
            module.support_avx512bf16_for_cpu = False
            changed += 1
    return changed
