"""chatkit.sizing: memory estimates against real models, the KV cache, and the "does it fit" tables.

Real models here are tiny ones built locally (dense Llama, Mixtral, Qwen2-MoE), loaded through
`from_pretrained` in fp32 / bf16 / fp16 and through bitsandbytes in 8-bit and 4-bit (it runs on CPU).
Nothing touches the network: conftest sets HF_HUB_OFFLINE=1. Parameter counts are tested in
test_counting.py, what the Hub says about a model in test_hub.py.
"""

import logging
import math
import warnings

import pytest
import torch
from helpers import TINY
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoConfig, AutoModelForCausalLM, BitsAndBytesConfig

import chatkit
from chatkit import counting, machine, sizing
from chatkit.catalog import CATALOG
from chatkit.memory import model_footprint

TOLERANCE_FOOTPRINT = 0.01  # within 1% of get_memory_footprint()


def _config(fields):
    fields = dict(fields)
    return AutoConfig.for_model(fields.pop("model_type"), **fields)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """{name: folder} of tiny random models saved once per session."""
    torch.manual_seed(0)
    folders = {}
    for name, fields in TINY.items():
        folder = tmp_path_factory.mktemp(name)
        AutoModelForCausalLM.from_config(_config(fields)).save_pretrained(folder)
        folders[name] = str(folder)
    return folders


@pytest.fixture(autouse=True)
def _quiet_libraries():
    chatkit.quiet()
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)


# ------------------------------------------------------------------ estimates vs real footprints
@pytest.mark.parametrize("name", sorted(TINY))
@pytest.mark.parametrize("dtype", ["fp32", "bf16", "fp16"])
def test_estimate_matches_get_memory_footprint(tiny_models, name, dtype):
    model = AutoModelForCausalLM.from_pretrained(
        tiny_models[name], dtype=getattr(torch, {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}[dtype])
    )
    estimate = sizing.estimate_memory(tiny_models[name], dtype, context_length=0)
    footprint = model.get_memory_footprint()
    assert abs(estimate.weights - footprint) / footprint <= TOLERANCE_FOOTPRINT
    assert estimate.quant_constants == 0 and estimate.kv_cache == 0


BNB_CASES = [
    ("int8", True, "fp16", dict(load_in_8bit=True)),
    ("4bit", True, "bf16", dict(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True)),
    ("4bit", False, "bf16", dict(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=False)),
]


@pytest.mark.parametrize("name", ["llama", "mixtral"])
@pytest.mark.parametrize("dtype,double_quant,base,options", BNB_CASES, ids=["int8", "nf4-double", "nf4"])
def test_bitsandbytes_estimate_matches_footprint_and_the_stored_constants(
    tiny_models, name, dtype, double_quant, base, options
):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = AutoModelForCausalLM.from_pretrained(
            tiny_models[name],
            quantization_config=BitsAndBytesConfig(bnb_4bit_compute_dtype=torch.bfloat16, **options),
            dtype=getattr(torch, {"fp16": "float16", "bf16": "bfloat16"}[base]),
        )
    estimate = sizing.estimate_memory(
        tiny_models[name], dtype, context_length=0, base_dtype=base, double_quant=double_quant
    )
    footprint = model.get_memory_footprint()  # parameters + buffers: leaves bitsandbytes' scales out
    stored = model_footprint(model)  # ... which chatkit.memory adds back, measured from the quant states
    assert stored > footprint
    assert abs(estimate.weights - estimate.quant_constants - footprint) / footprint <= TOLERANCE_FOOTPRINT
    assert abs(estimate.weights - stored) / stored <= TOLERANCE_FOOTPRINT
    if name == "mixtral":  # fused experts are not nn.Linear: bitsandbytes leaves them in 16-bit
        experts = model.model.layers[0].mlp.experts.gate_up_proj
        assert experts.dtype == getattr(torch, {"fp16": "float16", "bf16": "bfloat16"}[base])
        assert any("experts" in note for note in estimate.notes)


def test_4bit_overhead_per_weight_is_what_bitsandbytes_documents():
    shape = [(4096, 4096)]
    plain = sizing.quantization_constants_bytes(shape, "4bit", double_quant=False) / (4096 * 4096)
    nested = sizing.quantization_constants_bytes(shape, "4bit", double_quant=True) / (4096 * 4096)
    assert plain == pytest.approx(4 / 64, rel=1e-3)  # one fp32 absmax per 64 weights
    assert nested == pytest.approx(1 / 64 + 4 / (64 * 256), rel=1e-2)  # 8-bit absmax + fp32 per 256 blocks
    assert sizing.quantization_constants_bytes([(4096, 1024)], "int8") == 4 * 4096  # one fp32 per row


def test_moe_experts_quantized_only_when_asked():
    mixtral = CATALOG["mistralai/Mixtral-8x7B-Instruct-v0.1"]
    as_bitsandbytes = sizing.estimate_memory(mixtral, "4bit", context_length=0, overhead=0)
    all_quantized = sizing.estimate_memory(mixtral, "4bit", context_length=0, overhead=0, quantize_experts=True)
    bf16 = sizing.estimate_memory(mixtral, "bf16", context_length=0, overhead=0)
    assert all_quantized.weights < 0.3 * bf16.weights < as_bitsandbytes.weights < bf16.weights


@settings(max_examples=10, deadline=None)
@given(layers=st.integers(1, 3), hidden=st.sampled_from([128, 256]), vocab=st.integers(50, 500))
def test_smaller_formats_never_need_more_memory(layers, hidden, vocab):
    config = dict(
        model_type="llama",
        num_hidden_layers=layers,
        hidden_size=hidden,
        num_attention_heads=4,
        intermediate_size=2 * hidden,
        vocab_size=vocab,
    )
    estimates = [sizing.estimate_memory(config, d, context_length=0) for d in ("fp32", "bf16", "int8", "4bit")]
    weights = [e.weights for e in estimates]
    assert weights == sorted(weights, reverse=True)
    buffers = counting.count_parameters(config).buffer_bytes  # rotary tables stay fp32 in every dtype
    assert weights[0] - buffers == 2 * (weights[1] - buffers)


def test_4bit_code_books_outweigh_the_savings_on_tiny_matrices():
    # Each 4-bit matrix keeps ~1 KiB of code books: on a 32×32 matrix that is more than 8-bit's scales.
    config = dict(
        model_type="llama",
        num_hidden_layers=1,
        hidden_size=32,
        num_attention_heads=4,
        intermediate_size=64,
        vocab_size=50,
    )
    int8, nf4 = (sizing.estimate_memory(config, d, context_length=0) for d in ("int8", "4bit"))
    assert nf4.weights > int8.weights and nf4.quant_constants > 7 * 1024


# ---------------------------------------------------------------------------------------- KV cache
def test_kv_cache_of_llama3_8b_is_128_kib_per_token_in_bf16():
    llama = CATALOG["meta-llama/Meta-Llama-3-8B-Instruct"]
    assert sizing.kv_cache_bytes(llama, 1) == 131_072 == 2 * 32 * 8 * 128 * 2
    assert sizing.kv_cache_bytes(llama, 8192) == 2**30
    assert sizing.kv_cache_bytes(llama, 8192, batch_size=4, dtype="fp32") == 8 * 2**30


def _cache_bytes_after(model, tokens):
    ids = torch.randint(0, model.config.vocab_size, (1, tokens))
    with torch.no_grad():
        cache = model(ids, use_cache=True).past_key_values
    return sum(layer.keys.nbytes + layer.values.nbytes for layer in cache.layers)


@pytest.mark.parametrize(
    "fields",
    [
        dict(model_type="llama"),
        dict(model_type="gemma2", head_dim=8, sliding_window=8),  # every other layer slides
        dict(model_type="mistral", sliding_window=8),  # every layer slides
    ],
    ids=["llama", "gemma2", "mistral"],
)
def test_kv_cache_estimate_matches_transformers_cache(fields):
    config = _config(
        dict(
            vocab_size=64,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=4,
            num_attention_heads=4,
            num_key_value_heads=2,
            **fields,
        )
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config).eval()
    assert _cache_bytes_after(model, 6) == sizing.kv_cache_bytes(config, 6, dtype="fp32")
    # Past the window a sliding layer keeps window - 1 tokens; the estimate counts the whole window.
    sliding_layers = sum(1 for n in sizing._layer_cache_tokens(config, 20) if n < 20)
    per_token_layer = 2 * 2 * 8 * 4
    assert sizing.kv_cache_bytes(config, 20, dtype="fp32") - _cache_bytes_after(model, 20) == (
        sliding_layers * per_token_layer
    )


@settings(max_examples=30, deadline=None)
@given(context=st.integers(0, 200_000), batch=st.integers(1, 64))
def test_kv_cache_grows_linearly_without_a_window_and_stops_growing_with_one(context, batch):
    llama = CATALOG["meta-llama/Meta-Llama-3-8B-Instruct"]
    assert sizing.kv_cache_bytes(llama, context, batch) == 131_072 * context * batch
    gemma = CATALOG["google/gemma-2-2b-it"]
    per_token_layer = 2 * 4 * 256 * 2
    expected = 13 * per_token_layer * (context + min(context, 4096)) * batch
    assert sizing.kv_cache_bytes(gemma, context, batch) == expected


# ---------------------------------------------------------------------------------- bad input
def test_a_name_with_no_size_and_no_config_is_a_clear_error():
    with pytest.raises(ValueError, match="no total size"):
        sizing.estimate_memory("acme/mystery-model", "bf16")


def test_a_name_with_a_size_but_no_config_is_sized_approximately_and_says_so():
    estimate = sizing.estimate_memory("acme/mystery-13B-chat", "bf16")
    assert estimate.weights == 26 * 10**9 and estimate.kv_cache == 0
    assert "name" in estimate.basis and any("KV cache not included" in n for n in estimate.notes)


@pytest.mark.parametrize("dtype", ["int3", "float8", "", "double"])
def test_an_unknown_dtype_is_a_clear_error(dtype):
    with pytest.raises(ValueError, match="Unknown dtype.*fp32, bf16, fp16, int8, 4bit"):
        sizing.estimate_memory(TINY["llama"], dtype)


def test_bad_dtypes_counts_and_overheads_are_clear_errors():
    with pytest.raises(ValueError, match="compute dtype"):
        sizing.kv_cache_bytes(TINY["llama"], 10, dtype="4bit")
    with pytest.raises(ValueError, match="positive"):
        sizing.estimate_memory(-5, "bf16")
    with pytest.raises(ValueError, match="overhead"):
        sizing.estimate_memory(TINY["llama"], overhead=-1)


# ------------------------------------------------------------------------------------ tables
def test_fit_table_matches_the_seed_example():
    llama = "meta-llama/Meta-Llama-3-8B-Instruct"
    table = sizing.fit_table([llama], machine.COMMON_HARDWARE)
    row = dict(zip(table.columns, table.rows[0]))
    assert row["24 GB GPU (24 GiB)"] == "bf16"  # the seed's example: 8B in bf16 fits a 24 GB GPU
    assert row["Colab T4 (15 GiB)"] != "bf16"
    text = str(table)
    assert "Meta-Llama-3-8B-Instruct" in text and "overhead" in text


def test_a_table_looks_each_model_up_once_for_all_its_dtypes(monkeypatch):
    looked_up = []
    model_facts = counting.model_facts
    monkeypatch.setattr(counting, "model_facts", lambda name: looked_up.append(name) or model_facts(name))
    sizing.memory_table(["Qwen2.5-0.5B-Instruct", "acme/mystery-13B-chat"])  # four dtypes each
    sizing.fit_table(["Qwen2.5-0.5B-Instruct"])  # three dtypes
    assert looked_up.count("Qwen2.5-0.5B-Instruct") == 2  # once per table, not once per dtype


def test_memory_table_and_estimate_print_their_parts():
    table = sizing.memory_table(["Qwen2.5-0.5B-Instruct"], context_length=1024)
    assert table.columns[1] == "params" and table.rows[0][1] == "494M"
    estimate = sizing.estimate_memory("Qwen2.5-0.5B-Instruct", "bf16", context_length=1024, overhead=0.1)
    assert estimate.total == estimate.weights + estimate.kv_cache + estimate.overhead
    assert estimate.overhead == round(0.1 * (estimate.weights + estimate.kv_cache))
    assert "KV cache" in str(estimate) and "(10%)" in str(estimate)
    assert math.isclose(estimate.weights, 494_032_768 * 2, rel_tol=1e-4)


@pytest.mark.parametrize(
    "field, value",
    [
        ("num_hidden_layers", -3),  # was: 0 GiB
        ("sliding_window", -1),  # was: -512 bytes of KV cache
        ("hidden_size", -256),
        ("vocab_size", -1000),  # were: raw torch errors
        ("num_attention_heads", 0),  # was: ZeroDivisionError
        ("hidden_size", "256"),  # was: a raw validation error from deep inside transformers
    ],
)
def test_nonsense_config_numbers_are_one_clear_error_naming_the_field(field, value):
    config = {**TINY["llama"], field: value}
    for size in (
        lambda: sizing.estimate_memory(config, "bf16"),
        lambda: sizing.kv_cache_bytes(config, 1024),
        lambda: sizing.memory_table([config]),
    ):
        with pytest.raises(ValueError, match=f"config says {field}={value!r}: it must be a whole number"):
            size()
