"""How many bytes a number takes: dtypes, their spellings, and what bitsandbytes quantizes to.

The one place in chatkit for the bytes per parameter of each storage format (`BYTES_PER_PARAM`), the
names people write for them ("bfloat16", "nf4", `torch.float16`...), and the mapping from a
`BitsAndBytesConfig` to the format it stores ("int8" or "4bit").

Example:
    >>> BYTES_PER_PARAM["bf16"] * 8_000_000_000 / 1e9   # an 8B model's weights in bf16, GB
    16.0
    >>> normalize_dtype("bfloat16"), normalize_dtype("nf4")
    ('bf16', '4bit')
"""

# Bytes one parameter takes in each storage format. "int8" and "4bit" are bitsandbytes' LLM.int8()
# and NF4/FP4 formats; both also store scaling constants and leave some layers in 16-bit
# (`chatkit.sizing.quantization_constants_bytes`, `chatkit.sizing.estimate_memory`).
BYTES_PER_PARAM = {"fp32": 4, "bf16": 2, "fp16": 2, "int8": 1, "4bit": 0.5}
DTYPES = tuple(BYTES_PER_PARAM)
FLOAT_DTYPES = ("fp32", "bf16", "fp16")

# Other spellings readers use, mapped to the keys above.
DTYPE_ALIASES = {
    "float32": "fp32",
    "float": "fp32",
    "f32": "fp32",
    "bfloat16": "bf16",
    "float16": "fp16",
    "half": "fp16",
    "f16": "fp16",
    "8bit": "int8",
    "8-bit": "int8",
    "llm.int8": "int8",
    "4-bit": "4bit",
    "nf4": "4bit",
    "fp4": "4bit",
    "int4": "4bit",
}


def normalize_dtype(dtype):
    """The key of `BYTES_PER_PARAM` for a dtype given as a string or a torch dtype.

    Example:
        >>> import torch
        >>> normalize_dtype(torch.float16), normalize_dtype("8-bit")
        ('fp16', 'int8')
    """
    text = str(dtype).strip().lower().removeprefix("torch.")
    key = text if text in BYTES_PER_PARAM else DTYPE_ALIASES.get(text)
    if key is None:
        raise ValueError(
            f"Unknown dtype {dtype!r}. Use one of {', '.join(DTYPES)} (or {', '.join(sorted(DTYPE_ALIASES))})."
        )
    return key


def torch_dtype(dtype):
    """The torch dtype for a floating-point dtype written any way `normalize_dtype` reads.

    Example:
        >>> torch_dtype("bfloat16")
        torch.bfloat16
    """
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    key = normalize_dtype(dtype)
    if key not in FLOAT_DTYPES:
        raise ValueError(
            f"{dtype!r} is a quantized format, not a torch dtype: load it with a BitsAndBytesConfig, "
            f"or pick one of {', '.join(FLOAT_DTYPES)}."
        )
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[key]


def quantization_kind(quantization_config):
    """("int8" | "4bit" | None, double_quant) for a BitsAndBytesConfig, its dict, or None.

    Raises ValueError for another quantization method (GPTQ, AWQ, ...): chatkit sizes bitsandbytes only.

    Example:
        >>> quantization_kind({"load_in_4bit": True, "bnb_4bit_use_double_quant": True})
        ('4bit', True)
        >>> quantization_kind(None)
        (None, False)
    """
    if quantization_config is None:
        return None, False
    if isinstance(quantization_config, dict):
        get = quantization_config.get
    else:

        def get(name, default=None):
            return getattr(quantization_config, name, default)

    method = get("quant_method", "bitsandbytes")
    method = str(getattr(method, "value", method))  # transformers keeps an enum here
    if "bitsandbytes" not in method.lower():
        raise ValueError(f"chatkit sizes bitsandbytes quantization only, not {method!r}.")
    if get("load_in_8bit", False):
        return "int8", False
    if get("load_in_4bit", False):
        return "4bit", bool(get("bnb_4bit_use_double_quant", False))
    return None, False


def checkpoint_dtype(config):
    """The dtype a checkpoint was saved in (what `dtype="auto"` loads); "fp32" when the config is silent.

    Example:
        >>> checkpoint_dtype({"dtype": "bfloat16"}), checkpoint_dtype({})
        ('bf16', 'fp32')
    """
    if isinstance(config, dict):
        saved = config.get("dtype") or config.get("torch_dtype")
    else:
        saved = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    try:
        return normalize_dtype(saved) if saved is not None else "fp32"
    except ValueError:
        return "fp32"
