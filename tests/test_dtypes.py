"""chatkit.dtypes: bytes per parameter, the spellings of each dtype, and what bitsandbytes stores."""

import pytest
import torch
from transformers import BitsAndBytesConfig

from chatkit import dtypes


def test_dtype_spellings_and_torch_dtypes_are_understood():
    assert [dtypes.normalize_dtype(d) for d in ("bfloat16", torch.float16, "FP32", "nf4", "8bit")] == [
        "bf16",
        "fp16",
        "fp32",
        "4bit",
        "int8",
    ]


@pytest.mark.parametrize("dtype", ["int3", "float8", "", "double"])
def test_normalize_dtype_names_the_known_dtypes_for_an_unknown_one(dtype):
    with pytest.raises(ValueError, match="Unknown dtype.*fp32, bf16, fp16, int8, 4bit"):
        dtypes.normalize_dtype(dtype)


def test_every_alias_and_every_key_has_a_size():
    assert dtypes.DTYPES == tuple(dtypes.BYTES_PER_PARAM)
    assert set(dtypes.FLOAT_DTYPES) <= set(dtypes.DTYPES)
    assert set(dtypes.DTYPE_ALIASES.values()) <= set(dtypes.DTYPES)
    assert dtypes.BYTES_PER_PARAM == {"fp32": 4, "bf16": 2, "fp16": 2, "int8": 1, "4bit": 0.5}


# ------------------------------------------------------------------------------------ torch_dtype
@pytest.mark.parametrize(
    "dtype,expected",
    [
        ("bf16", torch.bfloat16),
        ("float16", torch.float16),
        (torch.float32, torch.float32),
        ("fp32", torch.float32),
    ],
)
def test_torch_dtype_reads_any_float_spelling_and_passes_torch_dtypes_through(dtype, expected):
    assert dtypes.torch_dtype(dtype) is expected


@pytest.mark.parametrize("dtype", ["int8", "4bit", "nf4"])
def test_torch_dtype_refuses_a_quantized_format(dtype):
    with pytest.raises(ValueError, match="is a quantized format"):
        dtypes.torch_dtype(dtype)


def test_torch_dtype_refuses_an_unknown_dtype():
    with pytest.raises(ValueError, match="Unknown dtype"):
        dtypes.torch_dtype("float8")


# ------------------------------------------------------------------------------ quantization_kind
@pytest.mark.parametrize(
    "config,expected",
    [
        (None, (None, False)),
        ({"load_in_8bit": True}, ("int8", False)),
        ({"load_in_4bit": True, "bnb_4bit_use_double_quant": True}, ("4bit", True)),
        ({"load_in_4bit": True}, ("4bit", False)),
        ({"quant_method": "bitsandbytes"}, (None, False)),
    ],
    ids=["none", "8bit", "4bit-double", "4bit", "neither"],
)
def test_quantization_kind_of_a_dict(config, expected):
    assert dtypes.quantization_kind(config) == expected


def test_quantization_kind_of_a_real_bitsandbytes_config():
    assert dtypes.quantization_kind(BitsAndBytesConfig(load_in_4bit=True)) == ("4bit", False)
    assert dtypes.quantization_kind(BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_use_double_quant=True)) == (
        "4bit",
        True,
    )
    assert dtypes.quantization_kind(BitsAndBytesConfig(load_in_8bit=True)) == ("int8", False)


@pytest.mark.parametrize("method", ["gptq", "awq"])
def test_quantization_kind_refuses_other_methods(method):
    with pytest.raises(ValueError, match=f"bitsandbytes quantization only, not '{method}'"):
        dtypes.quantization_kind({"quant_method": method})


# ------------------------------------------------------------------------------- checkpoint_dtype
@pytest.mark.parametrize(
    "config,expected",
    [
        ({"dtype": "bfloat16"}, "bf16"),
        ({}, "fp32"),
        ({"torch_dtype": "float16"}, "fp16"),
        ({"dtype": None, "torch_dtype": "bfloat16"}, "bf16"),
        ({"dtype": "not-a-dtype"}, "fp32"),
    ],
)
def test_checkpoint_dtype_of_a_dict(config, expected):
    assert dtypes.checkpoint_dtype(config) == expected


def test_checkpoint_dtype_of_a_transformers_config():
    from transformers import LlamaConfig

    assert dtypes.checkpoint_dtype(LlamaConfig(dtype="bfloat16")) == "bf16"
