"""Loading a chat model safely: safe defaults, a memory guard, and errors that say what to do.

`load_model()` wraps `from_pretrained` with safe defaults (safetensors only, no remote code,
`dtype="auto"`), checks the name first (an empty string or a missing folder gets chatkit's own
message, not a raw `Repo id must be in the form ...`), turns the Hub's errors (offline, gated, unknown
repo) into messages that say what to do next (`chatkit.hub.hub_error_message`), and, before any weight
is read, runs the memory guard:

- `loading_estimate(...)`: `chatkit.sizing.estimate_memory` for what `from_pretrained(model,
  dtype=..., quantization_config=...)` would load;
- `check_fits(...)`: that estimate against the memory available here (`chatkit.machine`); when it
  does not fit, `NotEnoughMemoryError` names the smaller options and how to load each.

Example:
    >>> import chatkit
    >>> model, tokenizer = load_model(chatkit.embedded_model_path())
    >>> type(model).__name__, model.dtype
    ('LlamaForCausalLM', torch.float32)
    >>> load_model("/no/such/folder")
    Traceback (most recent call last):
    ...
    chatkit.loading.ModelLoadError: There is no folder '/no/such/folder', and it is not a valid Hub id either. Check the path, or pass a Hub id like 'HuggingFaceTB/SmolLM2-360M-Instruct'.
"""

import os
from dataclasses import replace

from .counting import as_config
from .dtypes import FLOAT_DTYPES, checkpoint_dtype, normalize_dtype, quantization_kind
from .formatting import format_bytes
from .hub import DEFAULT_HUB_MODEL, describe_model, hub_error_message, name_problem
from .machine import machine_memory
from .sizing import DEFAULT_CONTEXT_LENGTH, DEFAULT_OVERHEAD, estimate_memory

class ModelLoadError(OSError):
    """A model could not be loaded; the message says why and what to do about it."""


def _check_name(name):
    problem = name_problem(name)
    if problem is not None:
        raise ModelLoadError(problem)


def _raise_helpful(name, error):
    message = hub_error_message(name, error)
    if message is None:
        raise error
    raise ModelLoadError(message) from error


def load_tokenizer(name, **kwargs):
    """`AutoTokenizer.from_pretrained` with the same checks and helpful errors as `load_model`."""
    from transformers import AutoTokenizer

    _check_name(name)
    kwargs.setdefault("trust_remote_code", False)
    try:
        return AutoTokenizer.from_pretrained(name, **kwargs)
    except OSError as error:
        _raise_helpful(name, error)


def load_model(name, dtype="auto", device_map="auto", allow_oversize=False, **kwargs):
    """Load a causal LM and its tokenizer with safe defaults; return `(model, tokenizer)`.

    Defaults: `dtype="auto"` (the checkpoint's own dtype), safetensors only, no remote code,
    `device_map="auto"` (GPU when there is one). Any `from_pretrained` keyword may be passed
    (`quantization_config=...`, `dtype=torch.bfloat16`, ...).

    Memory guard: before any weight is read, the need is estimated from the config (`check_fits`);
    when it exceeds the memory available (GPU memory, else RAM), `NotEnoughMemoryError` names the
    smaller options. `allow_oversize=True` skips it.
    """
    from transformers import AutoConfig, AutoModelForCausalLM

    kwargs.setdefault("use_safetensors", True)
    kwargs.setdefault("trust_remote_code", False)
    tokenizer = load_tokenizer(name, trust_remote_code=kwargs["trust_remote_code"])
    try:
        config = AutoConfig.from_pretrained(name, trust_remote_code=kwargs["trust_remote_code"])
    except OSError as error:
        _raise_helpful(name, error)
    except ValueError:  # an architecture transformers does not know: from_pretrained will say so
        config = None
    if config is not None:
        guard_loading(name, config, dtype, kwargs.get("quantization_config"), device_map, allow_oversize)
    try:
        model = AutoModelForCausalLM.from_pretrained(name, dtype=dtype, device_map=device_map, **kwargs)
    except OSError as error:
        _raise_helpful(name, error)
    model.eval()
    return model, tokenizer


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



def loading_estimate(model, dtype="auto", quantization_config=None, *, config=None,
                     context_length=None, overhead=None):
    """`chatkit.sizing.estimate_memory` for what `from_pretrained(model, dtype=..., quantization_config=...)` loads.

    model: a model name or folder (or a transformers config); `config` skips reading it again.
    dtype: "auto" (the checkpoint's dtype), a torch dtype or a name ("bf16", "float16"...).

    Example:
        >>> import chatkit
        >>> loading_estimate(chatkit.embedded_model_path()).dtype   # the embedded model is saved in fp32
        'fp32'
        >>> loading_estimate(chatkit.embedded_model_path(), quantization_config={"load_in_8bit": True}).dtype
        'int8'
    """
    if config is None:
        config = model if not isinstance(model, (str, os.PathLike)) else as_config(str(model))
    base = checkpoint_dtype(config) if dtype in (None, "auto") else normalize_dtype(dtype)
    quantized, double_quant = quantization_kind(quantization_config)
    if quantized and base not in FLOAT_DTYPES:
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
        >>> check_fits("meta-llama/Meta-Llama-3-8B-Instruct", "fp32", available_bytes=16 * 2**30)
        Traceback (most recent call last):
        ...
        chatkit.loading.NotEnoughMemoryError: Loading meta-llama/Meta-Llama-3-8B-Instruct in fp32 needs about 37.1 GiB (weights 29.9 GiB + KV cache for 4,096 tokens 1.0 GiB + 20% overhead), but this machine has 16.0 GiB available (as given). Smaller options:
        - bf16: about 18.5 GiB (does not fit either): dtype=torch.bfloat16
        ...
    """
    if config is None and isinstance(model, (str, os.PathLike)):
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
    label = str(model) if isinstance(model, (str, os.PathLike)) else (
        getattr(model, "name_or_path", "") or "the model")  # a config: its name_or_path when it has one
    raise NotEnoughMemoryError(_too_big_message(model, label, estimate, available_bytes, where, config,
                                                context_length, overhead))


def _too_big_message(model, label, estimate, available_bytes, where, config, context_length, overhead):
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
    return "\n".join(lines)


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
