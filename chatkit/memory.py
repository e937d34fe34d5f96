"""Measuring memory: what a loaded model really takes, the peak while loading, and the KV cache.

`chatkit.sizing` estimates memory from a config (no weights); this module measures real models, so a
notebook can put the two side by side.

- `footprint_breakdown(model)` / `model_footprint(model)`: bytes of every tensor the model holds, per
  storage dtype, including bitsandbytes' quantization state (the per-block scales of 4-bit weights, the
  per-row scales of 8-bit ones), which `model.get_memory_footprint()` does not count.
- `PeakMemory`: the peak memory while a block runs (CPU: the process's resident memory, sampled by a
  thread and, on Linux, read exactly from the kernel's high-water mark; GPU: torch's peak allocation).
- `cache_bytes(cache)` / `measure_kv_cache(...)`: the KV cache measured after a forward pass, next to
  `chatkit.sizing.kv_cache_bytes`: 2 × layers × kv_heads × head_dim × bytes per value × tokens.
- `disable_bnb_cpu_repacking(model)`: keeps bitsandbytes' 4-bit layers on the portable CPU path.

What memory is available here is `chatkit.machine.machine_memory()`; the guard that refuses to load
what cannot fit is `chatkit.loading.check_fits()`.

Example:
    >>> import chatkit
    >>> with PeakMemory() as peak:
    ...     model, tokenizer = chatkit.load_model(chatkit.embedded_model_path())
    >>> footprint_breakdown(model) == {"float32": model_footprint(model)}
    True
    >>> peak.peak_bytes >= peak.start_bytes
    True
"""

import gc
import os
import sys
import threading
from dataclasses import dataclass

from .sizing import kv_cache_bytes

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

    A 4-bit model, for one, shows `{'bfloat16': ..., 'uint8': ..., 'quant_state': ...}`: its packed
    weights are uint8, what bitsandbytes leaves unquantized is bf16.
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
    raise ValueError(f"cache_bytes needs a transformers Cache or a tuple of tensors, not {type(cache).__name__}.")


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
        >>> import chatkit
        >>> model, _ = chatkit.load_model(chatkit.embedded_model_path())
        >>> [m.measured_bytes == m.formula_bytes for m in measure_kv_cache(model, [16, 64])]
        [True, True]
    """
    import torch

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
