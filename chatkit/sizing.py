"""Sizing a chat model: memory per dtype, the KV cache, and "does it fit" tables.

A model's memory is, to first order, its parameter count (`chatkit.counting`) times the bytes each
parameter takes (`chatkit.dtypes.BYTES_PER_PARAM`), plus the KV cache that grows with the context,
plus some overhead. This module makes each term exact where it can:

- `estimate_memory(model, dtype)`: weights in fp32 / bf16 / fp16 / int8 / 4-bit, including the
  quantization constants bitsandbytes stores, plus the KV cache for a context and batch, plus a stated
  overhead. It agrees with `model.get_memory_footprint()` of real models and, quantization constants
  included, with `chatkit.memory.model_footprint()` (tests/test_sizing.py).
- `kv_cache_bytes(config, tokens)`: 2 × layers × kv_heads × head_dim × bytes × tokens (sliding windows kept).
- `memory_table()`, `fit_table()`: per model and dtype, GiB needed and where it fits
  (`chatkit.machine.COMMON_HARDWARE`, `chatkit.machine.your_machine()`).

What it simplifies: the overhead (activations, the CUDA context, allocator slack) is a stated fraction,
not a measurement; and quantization is sized as transformers' bitsandbytes integration does it.
A config's numbers are checked once, where configs are read (`chatkit.counting.check_config_numbers`):
-3 layers or 0 heads is a ValueError naming the field, never 0 GiB or a ZeroDivisionError.

Example:
    >>> round(estimate_memory("meta-llama/Meta-Llama-3-8B-Instruct", "bf16").weights / 1e9, 2)
    16.06
    >>> kv_cache_bytes("meta-llama/Meta-Llama-3-8B-Instruct", 1)
    131072
"""

import math
from dataclasses import dataclass
from pathlib import Path

from .counting import ParameterCount, as_config, count_parameters, model_ref, parse_model_size
from .dtypes import BYTES_PER_PARAM, FLOAT_DTYPES, normalize_dtype
from .formatting import GiB, Table, params_text
from .machine import COMMON_HARDWARE, Hardware

# bitsandbytes 4-bit stores one scale ("absmax") per block of 64 weights: fp32, i.e. 4/64 = 0.0625
# extra bytes per weight. With double quantization (QLoRA's `bnb_4bit_use_double_quant=True`) those
# scales are themselves quantized to 8 bits, in blocks of 256 with one fp32 scale each:
# 1/64 + 4/(64*256) = 0.0159 extra bytes per weight. Each quantized matrix also keeps its 16-entry
# code book (fp32) and, when nested, a 256-entry one and an offset. 8-bit keeps one fp32 scale per
# output row ("SCB"). Measured on bitsandbytes 0.50: see tests/test_sizing.py.
BNB_4BIT_BLOCKSIZE = 64
BNB_NESTED_BLOCKSIZE = 256
_CODE_4BIT_BYTES = 16 * 4
_NESTED_FIXED_BYTES = 256 * 4 + 4  # second code book + offset

# A rule of thumb for inference beyond weights and KV cache: activations, the CUDA context and
# allocator slack. EleutherAI's "Transformer Math 101" puts inference at about 1.2 × the model.
DEFAULT_OVERHEAD = 0.20
DEFAULT_CONTEXT_LENGTH = 4096


# ------------------------------------------------------------------------------------- KV cache
def _layer_cache_tokens(config, context_length):
    """Tokens each layer's KV cache holds for a context: all of them, or a sliding window's worth.

    Mirrors transformers' cache: `layer_types` when the config has them, else every layer slides
    when `sliding_window` is set. Sliding layers hold at most the window (transformers' dynamic
    cache keeps one token fewer once the window is full).
    """
    layers = config.num_hidden_layers
    window = getattr(config, "sliding_window", None)
    layer_types = getattr(config, "layer_types", None)
    if layer_types is None:
        layer_types = ["sliding_attention" if window else "full_attention"] * layers
    tokens = []
    for kind in layer_types:
        if kind in ("sliding_attention", "chunked_attention") and window:
            tokens.append(min(context_length, window))
        else:
            tokens.append(context_length)
    return tokens


def kv_cache_bytes(config, context_length, batch_size=1, dtype="bf16"):
    """Bytes of the KV cache: 2 (keys and values) × layers × kv_heads × head_dim × bytes × tokens.

    Layers with a sliding window (Gemma 2, Phi-3, some Mistral/Qwen configs) keep at most their
    window. Example: Llama-3-8B in bf16 keeps 2 × 32 × 8 × 128 × 2 = 131,072 bytes per token.

    Example:
        >>> kv_cache_bytes("meta-llama/Meta-Llama-3-8B-Instruct", 8192) / 2**30   # GiB for 8k tokens
        1.0
    """
    config = config.config if isinstance(config, ParameterCount) else as_config(config)
    key = normalize_dtype(dtype)
    if key in ("int8", "4bit"):
        raise ValueError(
            f"The KV cache is kept in the compute dtype (bf16, fp16 or fp32), not {key}: bitsandbytes "
            "quantizes weights only."
        )
    for name, value in (("context_length", context_length), ("batch_size", batch_size)):
        if not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a whole number ≥ 0, got {value!r}.")
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    per_token_per_layer = 2 * kv_heads * head_dim * BYTES_PER_PARAM[key]
    return int(per_token_per_layer * sum(_layer_cache_tokens(config, context_length)) * batch_size)


def quantization_constants_bytes(linear_shapes, dtype, double_quant=True):
    """Bytes bitsandbytes stores beside quantized weights: per-block or per-row scales, code books.

    `linear_shapes` is a list of (out_features, in_features), one per quantized matrix.

    Example:
        >>> quantization_constants_bytes([(4096, 4096)], "4bit", double_quant=False)   # 262,144 blocks × 4 B + code book
        1048640
    """
    key = normalize_dtype(dtype)
    total = 0
    for out_features, in_features in linear_shapes:
        if key == "int8":
            total += 4 * out_features
        elif key == "4bit":
            blocks = math.ceil(out_features * in_features / BNB_4BIT_BLOCKSIZE)
            total += _CODE_4BIT_BYTES
            if double_quant:
                total += blocks + 4 * math.ceil(blocks / BNB_NESTED_BLOCKSIZE) + _NESTED_FIXED_BYTES
            else:
                total += 4 * blocks
    return total


def _quantized_bytes(numel, key):
    return numel if key == "int8" else math.ceil(numel / 2)


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a model needs: weights (with quantization constants) + KV cache + overhead."""

    model: str
    dtype: str
    parameters: int
    weights: int
    kv_cache: int
    overhead: int
    quant_constants: int = 0  # part of `weights`: scales and code books of int8 / 4-bit
    context_length: int = 0
    batch_size: int = 1
    overhead_fraction: float = DEFAULT_OVERHEAD
    basis: str = ""
    notes: tuple = ()

    @property
    def total(self):
        return self.weights + self.kv_cache + self.overhead

    @property
    def total_gib(self):
        return self.total / GiB

    def fits(self, hardware):
        """True when the total fits the memory of `hardware` (a Hardware or a number of bytes)."""
        capacity = hardware.memory_bytes if isinstance(hardware, Hardware) else hardware
        return self.total <= capacity

    def __str__(self):
        parts = [f"weights {self.weights / GiB:.2f} GiB"]
        if self.context_length:
            parts.append(f"KV cache {self.kv_cache / GiB:.2f} GiB ({self.context_length:,} tokens × {self.batch_size})")
        parts.append(f"overhead {self.overhead / GiB:.2f} GiB ({self.overhead_fraction:.0%})")
        lines = [f"{self.model} in {self.dtype}: {self.total_gib:.2f} GiB = " + " + ".join(parts)]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def _resolve(model):
    """(label, ParameterCount or None, name size or None, basis) for what estimate_memory was given.

    Anything but a count goes through `chatkit.counting.model_ref`, the one door for a model; a name
    nothing knows falls back to the size its name claims.
    """
    if isinstance(model, ParameterCount):
        return "model", model, None, "exact count from the config"
    if isinstance(model, bool) or (isinstance(model, (int, float)) and model <= 0):
        raise ValueError(f"A parameter count must be a positive number, got {model!r}.")
    if isinstance(model, (int, float)):
        return f"{model / 1e9:g}B parameters", None, int(model), "parameter count given"
    try:
        ref = model_ref(model)
    except LookupError as error:  # a name that no folder, Hub or catalogue knows
        size = parse_model_size(Path(str(model)).name)
        if size is None or size.total is None:
            raise ValueError(
                f"Cannot size {str(model)!r}: {error} Its name carries no total size either "
                "(like '8B' or '8x7B'). Pass a transformers config, a local model folder, or the "
                "parameter count, e.g. estimate_memory(7e9, 'bf16')."
            ) from None
        return str(model), None, int(size.total), "size read from the name (approximate, dense)"
    basis = f"exact count from the config ({ref.facts.source})" if ref.facts else "exact count from the config"
    return ref.label, count_parameters(ref.config), None, basis


def _resolved_once(model):
    """`model` through the door once, for a table that sizes it in several dtypes; as given if it is a count
    or a name nothing knows (estimate_memory then says so, or reads its size from the name)."""
    if isinstance(model, (int, float, ParameterCount)):
        return model
    try:
        return model_ref(model)
    except LookupError:
        return model


def _weights_from_a_count(parameters, key, double_quant):
    """(weights, constants, notes) when only a parameter count is known: every weight in `key`."""
    weights = math.ceil(parameters * BYTES_PER_PARAM[key])
    constants = 0
    if key == "4bit":  # no architecture: every weight quantized, scales per block of 64
        blocks = math.ceil(parameters / BNB_4BIT_BLOCKSIZE)
        constants = blocks + 4 * math.ceil(blocks / BNB_NESTED_BLOCKSIZE) if double_quant else 4 * blocks
    notes = []
    if key in ("int8", "4bit"):
        notes.append(
            "every parameter counted as quantized: without the architecture, the layers "
            "bitsandbytes keeps in 16-bit are unknown"
        )
    return weights + constants, constants, notes


def _weights_from_the_architecture(counted, key, base, double_quant, quantize_experts):
    """(weights, constants, notes) layer by layer, as transformers' bitsandbytes integration stores them."""
    if key not in ("int8", "4bit"):
        return counted.total * BYTES_PER_PARAM[key] + counted.buffer_bytes, 0, []
    notes = []
    shapes = list(counted.linear_shapes)
    quantized_params = counted.quantizable
    if quantize_experts and counted.experts:
        shapes += [(e * rows, cols) for e, rows, cols in counted.expert_shapes]
        quantized_params += counted.experts
    elif counted.experts:
        notes.append(
            f"MoE experts ({params_text(counted.experts)} parameters) stay in {base}: transformers 5 "
            "stores them as fused tensors that bitsandbytes does not quantize "
            "(quantize_experts=True sizes a format that does)"
        )
    constants = quantization_constants_bytes(shapes, key, double_quant=double_quant)
    weights = (
        sum(_quantized_bytes(o * i, key) for o, i in shapes)
        + (counted.total - quantized_params) * BYTES_PER_PARAM[base]
        + constants
        + counted.buffer_bytes
    )
    return weights, constants, notes


def estimate_memory(
    model,
    dtype="bf16",
    *,
    context_length=DEFAULT_CONTEXT_LENGTH,
    batch_size=1,
    overhead=DEFAULT_OVERHEAD,
    base_dtype="bf16",
    double_quant=True,
    quantize_experts=False,
):
    """Memory to run `model` in `dtype`: weights + KV cache for `context_length` × `batch_size` + overhead.

    model: a model name or folder (see `chatkit.hub.model_facts`), a transformers config or config.json
        dict, a `chatkit.counting.ModelRef`, a `ParameterCount`, or a bare parameter count (then no KV
        cache: it needs the architecture).
    dtype: "fp32", "bf16", "fp16", "int8" or "4bit" (bitsandbytes; aliases like "nf4" work).
    overhead: fraction added for activations, CUDA context and allocator slack (a rule of thumb).
    base_dtype: for int8 / 4-bit, the dtype of what bitsandbytes leaves unquantized (embeddings,
        lm_head, norms, biases; `dtype=` of from_pretrained) and of the KV cache.
    double_quant: 4-bit only, `bnb_4bit_use_double_quant` (QLoRA's setting): 0.516 instead of
        0.5625 bytes per quantized weight.
    quantize_experts: False sizes MoE experts as transformers 5 + bitsandbytes store them today:
        unquantized, because fused 3-D expert tensors are not `nn.Linear` (bitsandbytes issue #1849).
        True sizes a format that quantizes them too (GGUF, or bitsandbytes once it does).

    The weights term is exact for the architecture: tests check it against
    `model.get_memory_footprint()` of real models in every dtype. `get_memory_footprint()` leaves out
    bitsandbytes' scales; `weights` includes them (`quant_constants` says how much they are), as
    `chatkit.memory.model_footprint()` does when it measures a loaded model.

    Example:
        >>> print(estimate_memory("meta-llama/Meta-Llama-3-8B-Instruct", "bf16"))
        meta-llama/Meta-Llama-3-8B-Instruct in bf16: 18.55 GiB = weights 14.96 GiB + KV cache 0.50 GiB (4,096 tokens × 1) + overhead 3.09 GiB (20%)
    """
    key = normalize_dtype(dtype)
    base = normalize_dtype(base_dtype)
    if base not in FLOAT_DTYPES:
        raise ValueError(f"base_dtype must be fp32, bf16 or fp16 (what stays unquantized), got {base_dtype!r}.")
    if not isinstance(overhead, (int, float)) or not 0 <= overhead < 10:
        raise ValueError(f"overhead is a fraction of weights + KV cache (0.2 = 20%), got {overhead!r}.")
    label, counted, bare, basis = _resolve(model)
    kv_dtype = key if key in FLOAT_DTYPES else base
    if counted is None:
        parameters = bare
        weights, constants, notes = _weights_from_a_count(bare, key, double_quant)
        kv = 0
        if context_length:
            notes.append("KV cache not included: it needs the architecture (a config)")
    else:
        parameters = counted.total
        weights, constants, notes = _weights_from_the_architecture(counted, key, base, double_quant, quantize_experts)
        kv = kv_cache_bytes(counted, context_length, batch_size, kv_dtype) if context_length else 0
    weights = int(weights)
    return MemoryEstimate(
        model=label,
        dtype=key,
        parameters=parameters,
        weights=weights,
        kv_cache=kv,
        overhead=int(round(overhead * (weights + kv))),
        quant_constants=int(constants),
        context_length=context_length if kv else 0,
        batch_size=batch_size,
        overhead_fraction=overhead,
        basis=basis,
        notes=tuple(notes),
    )


# --------------------------------------------------------------------------------------- tables
def _label(model):
    if isinstance(model, str):
        return model.rsplit("/", 1)[-1]
    return getattr(model, "name", None) or getattr(model, "repo_id", None) or "model"


def memory_table(
    models,
    dtypes=("fp32", "bf16", "int8", "4bit"),
    *,
    context_length=DEFAULT_CONTEXT_LENGTH,
    batch_size=1,
    overhead=DEFAULT_OVERHEAD,
    **kwargs,
):
    """GiB each model needs per dtype (weights + KV cache + overhead), as a `Table`.

    Example:
        >>> memory_table(["Qwen2.5-0.5B-Instruct"])
        model                  params  fp32 GiB  bf16 GiB  int8 GiB  4bit GiB
        ---------------------  ------  --------  --------  --------  --------
        Qwen2.5-0.5B-Instruct    494M       2.3       1.2       0.8       0.6
        weights + KV cache for 4,096 tokens × 1 + 20% overhead
    """
    dtypes = [normalize_dtype(d) for d in dtypes]
    rows = []
    for model in models:
        resolved = _resolved_once(model)
        estimates = [
            estimate_memory(
                resolved, d, context_length=context_length, batch_size=batch_size, overhead=overhead, **kwargs
            )
            for d in dtypes
        ]
        rows.append((_label(model), params_text(estimates[0].parameters), *(f"{e.total_gib:.1f}" for e in estimates)))
    return Table(
        columns=("model", "params", *(f"{d} GiB" for d in dtypes)),
        rows=tuple(rows),
        notes=(f"weights + KV cache for {context_length:,} tokens × {batch_size} + {overhead:.0%} overhead",),
    )


def fit_table(
    models,
    hardware=None,
    dtypes=("bf16", "int8", "4bit"),
    *,
    context_length=DEFAULT_CONTEXT_LENGTH,
    batch_size=1,
    overhead=DEFAULT_OVERHEAD,
    **kwargs,
):
    """For each model and each hardware, the first dtype in `dtypes` that fits, or "no", as a `Table`.

    hardware: Hardware entries (default: `COMMON_HARDWARE`); add `chatkit.machine.your_machine()` for this one.

    Example:
        >>> fit_table(["Meta-Llama-3-8B-Instruct"], COMMON_HARDWARE[:2])
        model                     Colab T4 (15 GiB)  24 GB GPU (24 GiB)
        ------------------------  -----------------  ------------------
        Meta-Llama-3-8B-Instruct               int8                bf16
        first of bf16, int8, 4bit whose weights + KV cache for 4,096 tokens × 1 + 20% overhead fit
    """
    hardware = tuple(COMMON_HARDWARE if hardware is None else hardware)
    dtypes = [normalize_dtype(d) for d in dtypes]
    rows = []
    for model in models:
        resolved = _resolved_once(model)
        estimates = [
            estimate_memory(
                resolved, d, context_length=context_length, batch_size=batch_size, overhead=overhead, **kwargs
            )
            for d in dtypes
        ]
        row = [_label(model)]
        for place in hardware:
            row.append(next((e.dtype for e in estimates if e.fits(place)), "no"))
        rows.append(tuple(row))
    return Table(
        columns=("model", *(f"{h.name} ({h.memory_gib:.0f} GiB)" for h in hardware)),
        rows=tuple(rows),
        notes=(
            f"first of {', '.join(dtypes)} whose weights + KV cache for {context_length:,} tokens × "
            f"{batch_size} + {overhead:.0%} overhead fit",
        ),
    )
