"""Sizing a chat model: parameters from a name or a config, memory per dtype, and will it fit.

A model's memory is, to first order, its parameter count times the bytes each parameter takes
(`BYTES_PER_PARAM`, the one place in chatkit for that fact), plus the KV cache that grows with the
context, plus some overhead. This module makes each term exact where it can:

- `parse_model_size(name)`: what a name like "Mixtral-8x7B" or "141B-A35B" claims (naively).
- `count_parameters(config)`: the exact total and per-token ("active") counts, from a transformers
  config, by building the model on PyTorch's meta device (shapes only, no memory).
- `estimate_memory(model, dtype)`: weights in fp32 / bf16 / fp16 / int8 / 4-bit, including the
  quantization constants bitsandbytes stores, plus the KV cache for a context and batch, plus a stated
  overhead. It agrees with `model.get_memory_footprint()` of real models and, quantization constants
  included, with `chatkit.memory.model_footprint()` (tests/test_sizing.py).
- `model_facts(name)`: a model's real `config.json` and published parameter count from the Hugging
  Face Hub (no weights downloaded), or chatkit's offline catalogue (`chatkit.catalog`) when offline.
- `memory_table()`, `fit_table()`, `COMMON_HARDWARE`, `your_machine()`: "does it fit" tables.

What it simplifies: the overhead (activations, the CUDA context, allocator slack) is a stated fraction,
not a measurement; and quantization is sized as transformers' bitsandbytes integration does it.

Example:
    >>> estimate_memory("meta-llama/Meta-Llama-3-8B-Instruct", "bf16").weights / 1e9   # doctest: +SKIP
    16.06...
"""

import json
import math
import os
import re
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from .catalog import CATALOG, CatalogEntry, hub_safetensors_source

GiB = 2**30

# Bytes one parameter takes in each storage format: the one place in chatkit for this fact.
# "int8" and "4bit" are bitsandbytes' LLM.int8() and NF4/FP4 formats; both also store scaling
# constants (see `quantization_constants_bytes`) and leave some layers in 16-bit (see `estimate_memory`).
BYTES_PER_PARAM = {"fp32": 4, "bf16": 2, "fp16": 2, "int8": 1, "4bit": 0.5}
DTYPES = tuple(BYTES_PER_PARAM)

# Other spellings readers use, mapped to the keys above.
DTYPE_ALIASES = {
    "float32": "fp32", "float": "fp32", "f32": "fp32",
    "bfloat16": "bf16",
    "float16": "fp16", "half": "fp16", "f16": "fp16",
    "8bit": "int8", "8-bit": "int8", "llm.int8": "int8",
    "4-bit": "4bit", "nf4": "4bit", "fp4": "4bit", "int4": "4bit",
}

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


# --------------------------------------------------------------------------------------- dtypes
def normalize_dtype(dtype):
    """The key of `BYTES_PER_PARAM` for a dtype given as a string or a torch dtype.

    Example:
        >>> normalize_dtype("bfloat16"), normalize_dtype("nf4")
        ('bf16', '4bit')
    """
    text = str(dtype).strip().lower().removeprefix("torch.")
    key = text if text in BYTES_PER_PARAM else DTYPE_ALIASES.get(text)
    if key is None:
        raise ValueError(
            f"Unknown dtype {dtype!r}. Use one of {', '.join(DTYPES)} "
            f"(or {', '.join(sorted(DTYPE_ALIASES))})."
        )
    return key


# ---------------------------------------------------------------------------------- from a name
class NameSize(NamedTuple):
    """Parameter counts a model's name claims. `None` where the name does not say."""

    total: int | None
    active: int | None
    experts: int | None = None


_UNITS = {"m": 10**6, "b": 10**9, "t": 10**12}
_NUMBER = r"(\d+(?:\.\d+)?)([mbt])"
_SIZE = re.compile(rf"^{_NUMBER}$")
_EXPERTS_X_SIZE = re.compile(rf"^(\d+)x{_NUMBER}$")
_ACTIVE = re.compile(rf"^a{_NUMBER}$")
_EXPERT_COUNT = re.compile(r"^(\d+)e$")


def _amount(number, unit):
    return int(Decimal(number) * _UNITS[unit])  # exact: "1.7B" is 1,700,000,000, no float noise


def parse_model_size(name):
    """Read the parameter counts a model name claims: NameSize(total, active, experts), or None.

    Sizes are the tokens between '-', '_' or spaces that read as a number and M, B or T
    ("360M", "0.5B", "8b"); context lengths like "4k" are not sizes. The first size wins
    ("Qwen2.5-7B-Instruct-1M" is 7B). Mixture-of-Experts names:
    - "8x7B": 8 experts of a 7B model, read naively as 56B total (the real Mixtral-8x7B has 46.7B:
      its experts share attention and embeddings); active is unknown from the name.
    - "141B-A35B" / "30B-A3B": total and active ("A") parameters.
    - "17B-16E" (Llama 4): 17B active, 16 experts, total not in the name.
    A plain "8B" is read as a dense model: active = total.

    Example:
        >>> parse_model_size("meta-llama/Meta-Llama-3-8B-Instruct")
        NameSize(total=8000000000, active=8000000000, experts=None)
    """
    if not isinstance(name, str):
        raise ValueError(f"parse_model_size expects a model name (str), got {type(name).__name__}.")
    total = active = experts = None
    plain = None
    for token in re.split(r"[-_\s]+", name.rsplit("/", 1)[-1].lower()):
        if match := _EXPERTS_X_SIZE.match(token):
            if total is None:
                experts = int(match[1])
                total = experts * _amount(match[2], match[3])
        elif match := _ACTIVE.match(token):
            active = _amount(match[1], match[2])
        elif match := _EXPERT_COUNT.match(token):
            experts = int(match[1])
        elif (match := _SIZE.match(token)) and plain is None and total is None:
            plain = _amount(match[1], match[2])
    if plain is not None:
        if experts is not None and active is None:  # "17B-16E": the size is the active part
            active = plain
        else:
            total = plain
    if total is None and active is None:
        return None
    if experts is None and active is None:
        active = total
    return NameSize(total, active, experts)


# -------------------------------------------------------------------------------- from a config
# Fields every decoder config must state to be sized; the MoE families add their own.
REQUIRED_FIELDS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads")
MOE_FIELDS = {
    "mixtral": ("intermediate_size", "num_local_experts", "num_experts_per_tok"),
    "qwen2_moe": ("moe_intermediate_size", "num_experts", "num_experts_per_tok"),
}


def _as_dict(config):
    """A plain dict for a config given as a dict, a transformers config, a catalogue entry or a folder."""
    from transformers import PretrainedConfig

    if isinstance(config, CatalogEntry):
        return dict(config.config)
    if isinstance(config, PretrainedConfig):
        return config.to_dict()
    if isinstance(config, dict):
        return dict(config)
    if isinstance(config, (str, os.PathLike)):
        return dict(model_facts(str(config)).config)
    raise ValueError(
        f"Expected a config (dict, transformers config, catalogue entry, model name or folder), "
        f"got {type(config).__name__}."
    )


def as_config(config):
    """A transformers config for `config`, after checking it states what sizing needs.

    Accepts a dict (the contents of config.json), a transformers `PretrainedConfig`, a catalogue
    entry, a local model folder or a model name (looked up with `model_facts`).

    Example:
        >>> as_config({"model_type": "llama", "vocab_size": 100, "hidden_size": 64,
        ...            "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128}).model_type
        'llama'
    """
    from transformers import AutoConfig, PretrainedConfig

    if isinstance(config, PretrainedConfig) and not isinstance(config, type):
        return config.get_text_config(decoder=True)
    fields = _as_dict(config)
    model_type = fields.get("model_type")
    if not model_type:
        raise ValueError(
            "The config has no 'model_type' (e.g. 'llama', 'mistral', 'mixtral', 'qwen2'): "
            "copy it from the model's config.json."
        )
    needed = REQUIRED_FIELDS + MOE_FIELDS.get(model_type, ("intermediate_size",))
    missing = [name for name in needed if fields.get(name) is None]
    if missing:
        raise ValueError(
            f"The {model_type!r} config is missing {', '.join(missing)}: these fix the model's size, "
            "and transformers would silently fill in its defaults. Copy them from the model's config.json."
        )
    try:
        built = AutoConfig.for_model(model_type, **{k: v for k, v in fields.items() if k != "model_type"})
    except ValueError as error:
        raise ValueError(
            f"transformers does not know model_type {model_type!r} ({error}). Sizing needs an "
            "architecture transformers implements; upgrade transformers or give the count directly."
        ) from error
    return built.get_text_config(decoder=True)


@dataclass(frozen=True)
class ParameterCount:
    """Exact parameter counts of an architecture, and the split that decides its memory.

    total: every parameter stored once (tied input/output embeddings counted once).
    active: what one token's forward pass reads: everything except the routed experts it does not
        use (for a dense model, = total). Embeddings count in full, as model authors count them.
    experts: parameters of the routed experts (0 for a dense model).
    embedding: the input embedding plus an untied output layer (lm_head).
    quantizable: parameters in the `nn.Linear` layers bitsandbytes replaces (transformers' rules:
        not lm_head, not modules kept in fp32). MoE experts stored as fused 3-D tensors (transformers
        5) are not `nn.Linear`, so bitsandbytes leaves them in 16-bit; see `estimate_memory`.
    """

    total: int
    active: int
    experts: int = 0
    num_experts: int = 0
    experts_per_token: int = 0
    embedding: int = 0
    quantizable: int = 0
    linear_shapes: tuple = field(default=(), repr=False)  # (out_features, in_features) per quantizable layer
    expert_shapes: tuple = field(default=(), repr=False)  # (experts, rows, cols) per fused expert tensor
    buffer_bytes: int = field(default=0, repr=False)  # non-parameter tensors (rotary tables), as stored
    config: object = field(default=None, repr=False, compare=False)

    @property
    def is_moe(self):
        return self.experts > 0

    def __str__(self):
        text = f"{self.total:,} parameters ({params_text(self.total)})"
        if self.is_moe:
            text += (
                f"; {self.active:,} active per token ({params_text(self.active)}: "
                f"{self.experts_per_token} of {self.num_experts} experts)"
            )
        return text


def _num_experts(config):
    for name in ("num_local_experts", "num_experts", "n_routed_experts"):
        value = getattr(config, name, None)
        if value:
            return int(value)
    return 0


def _modules_bitsandbytes_skips(model):
    """Module names transformers' bitsandbytes integration leaves unquantized for this model."""
    try:
        from transformers.quantizers.base import HfQuantizer

        return HfQuantizer.get_modules_to_not_convert(model, None, model._keep_in_fp32_modules)
    except (ImportError, AttributeError):  # another transformers version: its documented default
        output = model.get_output_embeddings()
        return [name for name, module in model.named_modules() if module is output]


def _should_quantize(name, skipped):
    try:
        from transformers.quantizers.quantizers_utils import should_convert_module

        return should_convert_module(name, skipped)
    except ImportError:
        return not any(name == key or name.startswith(key + ".") or name.endswith(key) for key in skipped)


@lru_cache(maxsize=64)
def _count(model_type, config_json):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    fields = json.loads(config_json)
    fields.pop("model_type", None)
    config = AutoConfig.for_model(model_type, **fields)
    try:
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
    except ValueError as error:
        raise ValueError(
            f"transformers cannot build a causal language model for model_type {model_type!r}: {error}"
        ) from error

    total = experts = 0
    expert_shapes = []
    for name, param in model.named_parameters():  # shared (tied) tensors are listed once
        total += param.numel()
        if ".experts." in f".{name}":
            experts += param.numel()
            if param.dim() == 3:
                expert_shapes.append(tuple(param.shape))
    embedding = model.get_input_embeddings().weight.numel()
    output = model.get_output_embeddings()
    if output is not None and output.weight is not model.get_input_embeddings().weight:
        embedding += output.weight.numel()

    skipped = _modules_bitsandbytes_skips(model)
    linear_shapes = tuple(
        (module.out_features, module.in_features)
        for name, module in model.named_modules()
        if type(module) is torch.nn.Linear and ".experts." not in f".{name}." and _should_quantize(name, skipped)
    )
    buffer_bytes = sum(b.numel() * b.element_size() for b in model.buffers())

    num_experts = _num_experts(config)
    per_token = int(getattr(config, "num_experts_per_tok", 0) or 0)
    if experts and not (num_experts and per_token):
        raise ValueError(
            f"The {model_type!r} config has expert layers but does not say how many experts there are "
            "and how many each token uses (num_local_experts / num_experts, num_experts_per_tok)."
        )
    active = total - (experts * (num_experts - per_token) // num_experts if experts else 0)
    return ParameterCount(
        total=total,
        active=active,
        experts=experts,
        num_experts=num_experts if experts else 0,
        experts_per_token=per_token if experts else 0,
        embedding=embedding,
        quantizable=sum(o * i for o, i in linear_shapes),
        linear_shapes=linear_shapes,
        expert_shapes=tuple(expert_shapes),
        buffer_bytes=buffer_bytes,
    )


def count_parameters(config):
    """Exact total and per-token parameter counts of a model, from its config, without its weights.

    The model is built on PyTorch's meta device: every tensor has its shape but no memory, so even a
    141B model counts in a second or two. Results are cached per config.

    Example:
        >>> count_parameters("mistralai/Mixtral-8x7B-Instruct-v0.1").total   # doctest: +SKIP
        46702792704
    """
    if isinstance(config, ParameterCount):
        return config
    built = as_config(config)
    fields = built.to_dict()
    # Keep only what can change shapes; nested sub-configs and generation settings do not.
    fields = {k: v for k, v in fields.items() if k not in {"transformers_version", "architectures"}}
    counted = _count(built.model_type, json.dumps(fields, sort_keys=True, default=str))
    return replace(counted, config=built)  # the cached count, with this config attached for the KV cache


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
        >>> kv_cache_bytes("meta-llama/Meta-Llama-3-8B-Instruct", 1)   # doctest: +SKIP
        131072
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


# --------------------------------------------------------------------------------------- memory
def params_text(count):
    """A parameter count as people write it: '46.7B', '360M', '1,234'.

    Example:
        >>> params_text(46_702_792_704), params_text(361_821_120)
        ('46.7B', '362M')
    """
    for unit, size in (("T", 10**12), ("B", 10**9), ("M", 10**6)):
        if count >= size:
            value = count / size
            return f"{value:.3g}{unit}" if value < 100 else f"{value:.0f}{unit}"
    return f"{count:,}"


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
            parts.append(
                f"KV cache {self.kv_cache / GiB:.2f} GiB ({self.context_length:,} tokens × {self.batch_size})"
            )
        parts.append(f"overhead {self.overhead / GiB:.2f} GiB ({self.overhead_fraction:.0%})")
        lines = [f"{self.model} in {self.dtype}: {self.total_gib:.2f} GiB = " + " + ".join(parts)]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def _resolve(model):
    """(label, ParameterCount or None, name size or None, basis) for what estimate_memory was given."""
    from transformers import PretrainedConfig

    if isinstance(model, ParameterCount):
        return "model", model, None, "exact count from the config"
    if isinstance(model, bool) or (isinstance(model, (int, float)) and model <= 0):
        raise ValueError(f"A parameter count must be a positive number, got {model!r}.")
    if isinstance(model, (int, float)):
        return f"{model / 1e9:g}B parameters", None, int(model), "parameter count given"
    if isinstance(model, (dict, PretrainedConfig, CatalogEntry)):
        label = getattr(model, "repo_id", None) or getattr(model, "name_or_path", None) or "model"
        return label or "model", count_parameters(model), None, "exact count from the config"
    if isinstance(model, (str, os.PathLike)):
        try:
            facts = model_facts(str(model))
        except LookupError as error:
            size = parse_model_size(Path(str(model)).name)
            if size is None or size.total is None:
                raise ValueError(
                    f"Cannot size {str(model)!r}: {error} Its name carries no total size either "
                    "(like '8B' or '8x7B'). Pass a transformers config, a local model folder, or the "
                    "parameter count, e.g. estimate_memory(7e9, 'bf16')."
                ) from None
            return str(model), None, int(size.total), "size read from the name (approximate, dense)"
        return facts.label, count_parameters(facts.config), None, f"exact count from the config ({facts.source})"
    raise ValueError(
        f"Cannot size a {type(model).__name__}: pass a model name, a folder, a config or a parameter count."
    )


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

    model: a model name or folder (see `model_facts`), a transformers config or config.json dict,
        a `ParameterCount`, or a bare parameter count (then no KV cache: it needs the architecture).
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
        >>> print(estimate_memory("meta-llama/Meta-Llama-3-8B-Instruct", "bf16"))   # doctest: +SKIP
        meta-llama/Meta-Llama-3-8B-Instruct in bf16: 18.55 GiB = weights 14.96 GiB + ...
    """
    key = normalize_dtype(dtype)
    base = normalize_dtype(base_dtype)
    if base in ("int8", "4bit"):
        raise ValueError(f"base_dtype must be fp32, bf16 or fp16 (what stays unquantized), got {base_dtype!r}.")
    if not isinstance(overhead, (int, float)) or not 0 <= overhead < 10:
        raise ValueError(f"overhead is a fraction of weights + KV cache (0.2 = 20%), got {overhead!r}.")
    label, counted, bare, basis = _resolve(model)
    notes = []
    kv_dtype = key if key in ("fp32", "bf16", "fp16") else base
    quantized = key in ("int8", "4bit")

    if counted is None:
        parameters = bare
        weights = math.ceil(bare * BYTES_PER_PARAM[key])
        constants = 0
        if key == "4bit":  # no architecture: every weight quantized, scales per block of 64
            blocks = math.ceil(bare / BNB_4BIT_BLOCKSIZE)
            constants = blocks + 4 * math.ceil(blocks / BNB_NESTED_BLOCKSIZE) if double_quant else 4 * blocks
            weights += constants
        if quantized:
            notes.append("every parameter counted as quantized: without the architecture, the layers "
                         "bitsandbytes keeps in 16-bit are unknown")
        kv = 0
        if context_length:
            notes.append("KV cache not included: it needs the architecture (a config)")
    else:
        parameters = counted.total
        if not quantized:
            weights = counted.total * BYTES_PER_PARAM[key]
            constants = 0
        else:
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
            )
        weights += counted.buffer_bytes
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


# ------------------------------------------------------------------------------ facts per model
@dataclass(frozen=True)
class ModelFacts:
    """A model's architecture (config.json fields) and published parameter count, and where each came from."""

    label: str
    config: dict
    source: str  # where the config came from
    params: float | None = None  # published total
    params_source: str = ""
    active_params: float | None = None
    active_source: str = ""
    licence: str = ""
    message: str = ""  # what happened, e.g. why the offline catalogue was used


def find_in_catalog(name):
    """The catalogue entry for a repo id or a bare model name (case-insensitive), or None."""
    wanted = str(name).strip().lower()
    for entry in CATALOG.values():
        if wanted in (entry.repo_id.lower(), entry.name.lower()):
            return entry
    return None


def _from_entry(entry, message):
    return ModelFacts(
        label=entry.repo_id,
        config=dict(entry.config),
        source="chatkit's offline catalogue",
        params=entry.params,
        params_source=entry.params_source,
        active_params=entry.active_params,
        active_source=entry.active_source or "",
        licence=entry.licence,
        message=message,
    )


def _hub_config(repo_id, local_only):
    from huggingface_hub import hf_hub_download

    path = hf_hub_download(repo_id, "config.json", local_files_only=local_only)
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _hub_safetensors_total(repo_id):
    from huggingface_hub import HfApi

    info = HfApi().model_info(repo_id, expand=["safetensors"])
    return info.safetensors.total if info.safetensors else None


def _hub_refusal(repo_id, error):
    """Why the Hub did not hand over a config.json, in words."""
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    if isinstance(error, GatedRepoError):
        return (f"{repo_id} is gated on the Hub (accept its licence on the model page and set HF_TOKEN "
                "to read its config.json)")
    if isinstance(error, RepositoryNotFoundError):
        return f"the Hub has no repository {repo_id} (or it is private)"
    return f"the Hub did not return {repo_id}'s config.json ({type(error).__name__})"


def model_facts(name, online=None):
    """Architecture and published size of a model: from a folder, the Hub, or chatkit's catalogue.

    1. A local folder with a config.json (e.g. `chatkit.embedded_model_path()`): read it.
    2. The Hub (unless offline): the repository's real `config.json` (no weights) and the Hub's exact
       count of the parameters in its safetensors files. A config already in the local Hugging Face
       cache is used offline too.
    3. Otherwise chatkit's offline catalogue (`chatkit.catalog.CATALOG`), saying why in `.message`.
    Raises LookupError when none of them knows the model.

    online: None asks the Hub when it is reachable; False never asks.

    Example:
        >>> model_facts("Mixtral-8x7B-Instruct-v0.1").config["num_local_experts"]   # doctest: +SKIP
        8
    """
    from .loading import describe_model, hub_reachable

    name = str(name).strip()
    folder = Path(name).expanduser()
    if folder.is_dir():
        config_file = folder / "config.json"
        if not config_file.is_file():
            raise LookupError(f"The folder {describe_model(name)!r} has no config.json.")
        config = json.loads(config_file.read_text(encoding="utf-8"))
        return ModelFacts(label=describe_model(name), config=config, source="config.json in the model folder")

    entry = find_in_catalog(name)
    repo_id = entry.repo_id if entry else name
    reachable = False if online is False else hub_reachable()
    reason = "the Hub cannot be reached (no network, or HF_HUB_OFFLINE=1)"
    if online is False:
        reason = "online=False"
    if "/" in repo_id and online is not False:
        try:
            config = _hub_config(repo_id, local_only=not reachable)
        except (OSError, ValueError) as error:  # offline and not cached, gated, unknown repo
            if reachable:
                reason = _hub_refusal(repo_id, error)
        else:
            total, total_source = None, ""
            if reachable:
                try:
                    total = _hub_safetensors_total(repo_id)
                except Exception:  # the count is a bonus: the config alone sizes the model
                    total = None
                total_source = hub_safetensors_source(repo_id) if total else ""
            if total is None and entry is not None:
                total, total_source = entry.params, entry.params_source
            return ModelFacts(
                label=repo_id,
                config=config,
                source="config.json from the Hugging Face Hub" if reachable else "config.json from the local Hugging Face cache",
                params=total,
                params_source=total_source,
                active_params=entry.active_params if entry else None,
                active_source=(entry.active_source or "") if entry else "",
                licence=entry.licence if entry else "",
            )
    if entry is not None:
        return _from_entry(
            entry,
            f"{reason}: using chatkit's offline catalogue for {entry.repo_id} "
            "(architecture copied from its config.json on the Hub).",
        )
    raise LookupError(
        f"{name!r} is not a local folder, not in chatkit's offline catalogue, and its config.json could "
        f"not be read from the Hub ({reason}). Known offline: {', '.join(e.name for e in CATALOG.values())}."
    )


# ------------------------------------------------------------------------------------- hardware
@dataclass(frozen=True)
class Hardware:
    """Somewhere to run a model, and how many bytes of memory a model can use there."""

    name: str
    memory_bytes: int
    note: str = ""

    @property
    def memory_gib(self):
        return self.memory_bytes / GiB


# GPU makers sell memory in GiB-sized "GB": a 24 GB card holds 24 GiB. Programs see a little less
# (the T4's ECC reserves some: 15 GiB visible); the KV cache and the overhead must fit as well.
COMMON_HARDWARE = (
    Hardware("Colab T4", 15 * GiB, "NVIDIA T4, Google Colab's free GPU: 16 GB, 15 GiB visible to programs"),
    Hardware("24 GB GPU", 24 * GiB, "consumer GPU: RTX 3090 / 4090"),
    Hardware("A100/H100 80GB", 80 * GiB, "data-centre GPU"),
    Hardware("H200", 141 * GiB, "data-centre GPU, 141 GB HBM3e"),
    Hardware("16 GB laptop", 16 * GiB, "CPU with 16 GiB RAM, shared with the OS and your other programs"),
)


def your_machine():
    """This machine as a Hardware: its GPUs' memory when torch sees CUDA GPUs, else its RAM.

    On Apple silicon (MPS) the GPU shares the system RAM, so RAM is what counts there too.

    Example:
        >>> your_machine().memory_bytes > 0
        True
    """
    import torch

    from .memory import machine_memory

    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        names = {torch.cuda.get_device_name(i) for i in range(count)}
        memory = sum(torch.cuda.get_device_properties(i).total_memory for i in range(count))
        label = f"{count}× " if count > 1 else ""
        return Hardware(f"this machine ({label}{', '.join(sorted(names))})", int(memory), "GPU memory")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        ram = machine_memory("cpu").total_bytes
        return Hardware("this machine (Apple GPU)", ram, "unified memory, shared with the system")
    return Hardware("this machine (CPU)", machine_memory("cpu").total_bytes, "system RAM")


# --------------------------------------------------------------------------------------- tables
@dataclass(frozen=True)
class Table:
    """A small text table: shows itself as aligned columns when it ends a notebook cell."""

    columns: tuple
    rows: tuple
    title: str = ""
    notes: tuple = ()

    def __str__(self):
        cells = [tuple(map(str, self.columns))] + [tuple(map(str, row)) for row in self.rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(self.columns))]

        def line(row):
            first = row[0].ljust(widths[0])
            return "  ".join([first] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]).rstrip()

        out = [self.title] if self.title else []
        out += [line(cells[0]), "  ".join("-" * w for w in widths)] + [line(r) for r in cells[1:]]
        out += self.notes
        return "\n".join(out)

    __repr__ = __str__


def _label(model):
    if isinstance(model, str):
        return model.rsplit("/", 1)[-1]
    return getattr(model, "name", None) or getattr(model, "repo_id", None) or "model"


def memory_table(models, dtypes=("fp32", "bf16", "int8", "4bit"), *, context_length=DEFAULT_CONTEXT_LENGTH,
                 batch_size=1, overhead=DEFAULT_OVERHEAD, **kwargs):
    """GiB each model needs per dtype (weights + KV cache + overhead), as a `Table`.

    Example:
        >>> memory_table(["Qwen2.5-0.5B-Instruct"])   # doctest: +SKIP
    """
    dtypes = [normalize_dtype(d) for d in dtypes]
    rows = []
    for model in models:
        estimates = [estimate_memory(model, d, context_length=context_length, batch_size=batch_size,
                                     overhead=overhead, **kwargs) for d in dtypes]
        rows.append((_label(model), params_text(estimates[0].parameters),
                     *(f"{e.total_gib:.1f}" for e in estimates)))
    return Table(
        columns=("model", "params", *(f"{d} GiB" for d in dtypes)),
        rows=tuple(rows),
        notes=(f"weights + KV cache for {context_length:,} tokens × {batch_size} + {overhead:.0%} overhead",),
    )


def fit_table(models, hardware=None, dtypes=("bf16", "int8", "4bit"), *,
              context_length=DEFAULT_CONTEXT_LENGTH, batch_size=1, overhead=DEFAULT_OVERHEAD, **kwargs):
    """For each model and each hardware, the first dtype in `dtypes` that fits, or "no", as a `Table`.

    hardware: Hardware entries (default: `COMMON_HARDWARE`); add `your_machine()` for this one.

    Example:
        >>> fit_table(["Meta-Llama-3-8B-Instruct"], [your_machine()])   # doctest: +SKIP
    """
    hardware = tuple(COMMON_HARDWARE if hardware is None else hardware)
    dtypes = [normalize_dtype(d) for d in dtypes]
    rows = []
    for model in models:
        estimates = [estimate_memory(model, d, context_length=context_length, batch_size=batch_size,
                                     overhead=overhead, **kwargs) for d in dtypes]
        row = [_label(model)]
        for place in hardware:
            row.append(next((e.dtype for e in estimates if e.fits(place)), "no"))
        rows.append(tuple(row))
    return Table(
        columns=("model", *(f"{h.name} ({h.memory_gib:.0f} GiB)" for h in hardware)),
        rows=tuple(rows),
        notes=(f"first of {', '.join(dtypes)} whose weights + KV cache for {context_length:,} tokens × "
               f"{batch_size} + {overhead:.0%} overhead fit",),
    )
