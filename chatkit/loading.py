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

A model reference is resolved once, at the door: `load_model` checks the name and reads its config
once (as `from_pretrained` will build it), the guard functions turn what they are given into one
`chatkit.counting.ModelRef` (label and config), and a load estimates its memory once. Past the door only
the config travels: counting and sizing never see the name again.

Whatever cannot give a working model is one `ModelLoadError` that says why and what to do, never a
model with random weights: a path to a file, an empty folder, a config.json that is not JSON or whose
numbers make no sense (`num_hidden_layers=-2`), a folder with only a pickled `pytorch_model.bin`
(safetensors only is the safe default), a truncated safetensors file, weights missing from the checkpoint
or of the wrong shape.

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

import json
import os
from pathlib import Path

from .counting import ModelRef, check_config_numbers, model_ref
from .dtypes import FLOAT_DTYPES, checkpoint_dtype, normalize_dtype, quantization_kind
from .formatting import format_bytes
from .hub import DEFAULT_HUB_MODEL, describe_model, hub_error_message, name_problem
from .machine import machine_memory
from .sizing import DEFAULT_CONTEXT_LENGTH, DEFAULT_OVERHEAD, estimate_memory


class ModelLoadError(OSError):
    """A model could not be loaded; the message says why and what to do about it."""


def _check_name(name, need_config=False):
    """Refuse at once a name that cannot be a model: one clear message each, before transformers tries."""
    path = Path(str(name)).expanduser() if isinstance(name, (str, os.PathLike)) else None
    if path is not None and path.is_file():
        gguf = f" with gguf_file={path.name!r}" if path.suffix == ".gguf" else ""
        raise ModelLoadError(
            f"{str(name)!r} is a file; pass the folder that holds the model (config.json, the "
            f"weights, the tokenizer files) instead: {str(path.parent)!r}{gguf}"
        )
    problem = name_problem(name)
    if problem is not None:
        raise ModelLoadError(problem)
    if path is None or not path.is_dir():
        return  # a Hub id
    if not any(path.iterdir()):
        raise ModelLoadError(
            f"The folder {str(name)!r} is empty: no model was saved there. Save one with "
            "model.save_pretrained(folder) and tokenizer.save_pretrained(folder), or check the path."
        )
    config = path / "config.json"
    if need_config and not config.is_file():
        raise ModelLoadError(
            f"The folder {str(name)!r} has no config.json, so it is not a saved model (it has "
            f"{', '.join(sorted(p.name for p in path.iterdir())[:5])}). Check the path, or save "
            "the model there with model.save_pretrained(folder)."
        )
    if config.is_file():
        try:
            json.loads(config.read_text(encoding="utf-8"))
        except ValueError as error:  # also a UnicodeDecodeError
            raise ModelLoadError(
                f"{str(config)!r} is not valid JSON ({error}): the file is damaged or was cut "
                "short. Download the model again, or fix the file."
            ) from None


def _raise_helpful(name, error):
    message = hub_error_message(name, error)
    if message is None:
        raise error
    raise ModelLoadError(message) from error


def _open_checkpoint(name, kwargs):
    """load_model's door: check `name`, then read its config once, as from_pretrained will build it (with
    what `kwargs` override, e.g. num_hidden_layers=...), its numbers checked. The ModelRef's config is None
    when transformers does not know the architecture: from_pretrained will say so."""
    from transformers import AutoConfig

    _check_name(name, need_config="gguf_file" not in kwargs)
    label = describe_model(str(name))
    try:
        config, _ = AutoConfig.from_pretrained(name, return_unused_kwargs=True, **kwargs)
    except OSError as error:
        _raise_helpful(name, error)
    except ValueError:  # an architecture transformers does not know
        return ModelRef(label, None)
    try:
        check_config_numbers(config.get_text_config(decoder=True))
    except ValueError as error:
        raise ModelLoadError(f"Cannot load {label}: {error}") from None
    return ModelRef(label, config)


def _tokenizer(name, auto=None, **kwargs):
    """`auto.from_pretrained(name)` (default: AutoTokenizer), its errors made helpful."""
    from transformers import AutoTokenizer

    kwargs.setdefault("trust_remote_code", False)
    try:
        return (auto or AutoTokenizer).from_pretrained(name, **kwargs)
    except OSError as error:
        _raise_helpful(name, error)


def load_tokenizer(name, **kwargs):
    """`AutoTokenizer.from_pretrained` with the same checks and helpful errors as `load_model`."""
    _check_name(name)
    return _tokenizer(name, **kwargs)


def load_model(name, dtype="auto", device_map="auto", allow_oversize=False, **kwargs):
    """Load a causal LM and its tokenizer with safe defaults; return `(model, tokenizer)`. A model that sees (its
    config has a `vision_config`) loads as `AutoModelForImageTextToText` with its `AutoProcessor`, which
    holds the tokenizer: `(model, processor)`.

    Defaults: `dtype="auto"` (the checkpoint's own dtype), safetensors only, no remote code,
    `device_map="auto"` (GPU when there is one). Any `from_pretrained` keyword may be passed
    (`quantization_config=...`, `dtype=torch.bfloat16`, ...).

    Memory guard: before any weight is read, the need is estimated from the config (`check_fits`);
    when it exceeds the memory available (GPU memory, else RAM), `NotEnoughMemoryError` names the
    smaller options. `allow_oversize=True` skips it.
    """
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText, AutoProcessor

    kwargs.setdefault("use_safetensors", True)
    kwargs.setdefault("trust_remote_code", False)
    kwargs.pop("output_loading_info", None)  # load_model reads it itself, below
    ref = _open_checkpoint(name, kwargs)
    if ref.config is not None:
        guard_loading(ref, ref.config, dtype, kwargs.get("quantization_config"), device_map, allow_oversize)
    sees = ref.config is not None and hasattr(ref.config, "vision_config")
    tokenizer = _tokenizer(name, AutoProcessor if sees else None, trust_remote_code=kwargs["trust_remote_code"])
    try:
        model, info = (AutoModelForImageTextToText if sees else AutoModelForCausalLM).from_pretrained(
            name, dtype=dtype, device_map=device_map, output_loading_info=True, **kwargs
        )
    except RuntimeError as error:  # transformers refuses weights of the wrong shape (ignore_mismatched_sizes)
        if "mismatched" not in str(error):
            raise
        raise _weights_do_not_match(ref.label, "some weights have another shape than config.json says") from None
    except SafetensorError as error:
        raise ModelLoadError(
            f"A weights file (.safetensors) of {ref.label} is damaged ({error}): "
            "it was probably cut short while downloading or copying. Download it again."
        ) from None
    except OSError as error:
        if kwargs["use_safetensors"] and "safetensors" in str(error) and hub_error_message(name, error) is None:
            raise ModelLoadError(
                f"{ref.label} has no weights in safetensors format ({error}). chatkit loads "
                "safetensors only, the safe default: a pytorch_model.bin is a pickle file, and loading one can "
                "run any code hidden in it. Convert it to safetensors (load it once where you trust it, then "
                "model.save_pretrained(folder) writes model.safetensors), or pass use_safetensors=False if you "
                "trust the file."
            ) from None
        _raise_helpful(name, error)
    _check_weights(ref.label, info, allow_mismatched=kwargs.get("ignore_mismatched_sizes", False))
    model.eval()
    return model, tokenizer


def _check_weights(label, info, allow_mismatched=False):
    """Refuse a model some of whose weights were not in the checkpoint: transformers made them up at random."""
    missing = sorted(info.get("missing_keys") or ())
    mismatched = [] if allow_mismatched else list(info.get("mismatched_keys") or ())
    problems = []
    if missing:
        problems.append(f"{len(missing)} weights are missing from the checkpoint (e.g. {', '.join(missing[:3])})")
    if mismatched:
        problems.append(f"{len(mismatched)} have another shape than config.json says (e.g. {mismatched[0]})")
    if problems:
        raise _weights_do_not_match(label, " and ".join(problems))


def _weights_do_not_match(label, problem):
    return ModelLoadError(
        f"The weights of {label} do not match its architecture: {problem}. transformers "
        "would fill them with random numbers, and the model would answer nonsense. The weights file is damaged "
        "or belongs to another model: download the model again, or check that config.json and the weights "
        "come from the same model."
    )


# ----------------------------------------------------------------------------- the memory guard
class NotEnoughMemoryError(MemoryError):
    """Loading a model would need more memory than this machine has; the message names smaller options."""


# What the guard suggests, smallest memory last, with the from_pretrained arguments that load each.
SMALLER_OPTIONS = (
    ("bf16", "dtype=torch.bfloat16"),
    ("int8", "quantization_config=BitsAndBytesConfig(load_in_8bit=True), dtype=torch.float16"),
    (
        "4bit",
        'quantization_config=BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", '
        "bnb_4bit_use_double_quant=True), dtype=torch.bfloat16",
    ),
)


def _open(model, config=None):
    """The guard's door: a name, a folder, a config or a ModelRef, resolved once into a ModelRef.

    A name is looked up with `chatkit.counting.model_ref`, unless its `config` is given (load_model reads
    it itself, with from_pretrained's overrides). A config keeps its top level, where a checkpoint's dtype
    and quantization are saved, and is named by its name_or_path.
    """
    if isinstance(model, ModelRef):
        return model
    if isinstance(model, (str, os.PathLike)):
        return model_ref(model) if config is None else ModelRef(describe_model(str(model)), config)
    config = model if config is None else config
    return ModelRef(describe_model(getattr(config, "name_or_path", "") or "the model"), config)


def loading_estimate(model, dtype="auto", quantization_config=None, *, config=None, context_length=None, overhead=None):
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
    return _estimate(_open(model, config), dtype, quantization_config, context_length, overhead)


def _estimate(ref, dtype="auto", quantization_config=None, context_length=None, overhead=None):
    """The one place the guard sizes a load: `estimate_memory` on the ref's config, labelled with its name."""
    base = checkpoint_dtype(ref.config) if dtype in (None, "auto") else normalize_dtype(dtype)
    quantized, double_quant = quantization_kind(quantization_config)
    if quantized and base not in FLOAT_DTYPES:
        raise ValueError(f"with quantization_config, dtype must be a float dtype (bf16, fp16, fp32), not {dtype!r}.")
    return estimate_memory(
        ref,
        quantized or base,
        context_length=DEFAULT_CONTEXT_LENGTH if context_length is None else context_length,
        overhead=DEFAULT_OVERHEAD if overhead is None else overhead,
        base_dtype=base if quantized else "bf16",
        double_quant=double_quant,
    )


def check_fits(
    model,
    dtype="auto",
    quantization_config=None,
    *,
    config=None,
    available_bytes=None,
    device=None,
    context_length=None,
    overhead=None,
    allow_oversize=False,
):
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
    ref = _open(model, config)
    estimate = _estimate(ref, dtype, quantization_config, context_length, overhead)
    return _refuse_if_too_big(
        ref, estimate, available_bytes=available_bytes, device=device, allow_oversize=allow_oversize
    )


def _refuse_if_too_big(ref, estimate, *, available_bytes=None, device=None, allow_oversize=False):
    """`estimate` when it fits the memory available here (or `allow_oversize`); else NotEnoughMemoryError."""
    if available_bytes is None:
        machine = machine_memory(device)
        available_bytes, where = machine.available_bytes, machine.describe()
    else:
        where = f"{format_bytes(available_bytes)} available (as given)"
    if estimate.total <= available_bytes or allow_oversize:
        return estimate
    raise NotEnoughMemoryError(_too_big_message(ref, estimate, available_bytes=available_bytes, where=where))


def _too_big_message(ref, estimate, *, available_bytes, where):
    """What does not fit, and each smaller option sized like `estimate` (same context length and overhead)."""
    lines = [
        f"Loading {estimate.model} in {estimate.dtype} needs about {format_bytes(estimate.total)} "
        f"(weights {format_bytes(estimate.weights)} + KV cache for {estimate.context_length:,} tokens "
        f"{format_bytes(estimate.kv_cache)} + {estimate.overhead_fraction:.0%} overhead), but this machine "
        f"has {where}. Smaller options:"
    ]
    order = [key for key, _ in SMALLER_OPTIONS]
    asked = "bf16" if estimate.dtype == "fp16" else estimate.dtype  # same size: suggest what is smaller
    start = order.index(asked) + 1 if asked in order else 0
    for key, how in SMALLER_OPTIONS[start:]:
        option = _estimate(
            ref,
            "bf16" if key != "int8" else "fp16",
            None if key == "bf16" else _option_config(key),
            context_length=estimate.context_length,
            overhead=estimate.overhead_fraction,
        )
        verdict = "fits" if option.total <= available_bytes else "does not fit either"
        lines.append(f"- {key}: about {format_bytes(option.total)} ({verdict}): {how}")
    lines.append(
        f"- a smaller model, e.g. {DEFAULT_HUB_MODEL!r} or chatkit.embedded_model_path() (offline); "
        "chatkit.sizing.fit_table() compares models."
    )
    lines.append("To load anyway (it may swap, crash or be killed), pass allow_oversize=True.")
    return "\n".join(lines)


def guard_loading(model, config, dtype="auto", quantization_config=None, device_map=None, allow_oversize=False):
    """What `chatkit.load_model` runs before reading weights: `check_fits`, skipped where it cannot judge.

    Returns the estimate, or None when the architecture cannot be sized (a model type sizing cannot
    build, a quantization method other than bitsandbytes, e.g. a GPTQ or AWQ checkpoint): then
    loading proceeds unguarded. A checkpoint saved quantized is sized as its config says. The memory
    is estimated once, and that estimate is what the guard judges.
    """
    if allow_oversize:
        return None
    try:
        ref = _open(model, config)
        if quantization_config is None:
            quantization_config = getattr(ref.config, "quantization_config", None)
        estimate = _estimate(ref, dtype, quantization_config)
    except Exception:  # the guard is advisory: what sizing cannot size must still load
        return None
    device = "cpu" if device_map in ("cpu", {"": "cpu"}) else None
    return _refuse_if_too_big(ref, estimate, device=device)


def _option_config(key):
    if key == "int8":
        return {"load_in_8bit": True}
    return {"load_in_4bit": True, "bnb_4bit_use_double_quant": True}
