"""chatkit.memory: what a loaded model really takes (per dtype, with bitsandbytes' state), peaks, the KV cache."""

import time

import pytest
import torch
from transformers import AutoModelForCausalLM, BitsAndBytesConfig

import chatkit
from chatkit import formatting, loading, memory

# Loading arguments per precision, as the notebook uses them: (from_pretrained keywords).
PRECISIONS = {
    "fp32": dict(dtype=torch.float32),
    "bf16": dict(dtype=torch.bfloat16),
    "int8": dict(dtype=torch.float16, quantization_config=BitsAndBytesConfig(load_in_8bit=True)),
    "nf4": dict(
        dtype=torch.bfloat16,
        quantization_config=BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16
        ),
    ),
    "nf4-dq": dict(
        dtype=torch.bfloat16,
        quantization_config=BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        ),
    ),
}


@pytest.fixture(scope="module")
def loaded(model_dir):
    chatkit.quiet()
    models = {}
    for name, kwargs in PRECISIONS.items():
        models[name] = AutoModelForCausalLM.from_pretrained(model_dir, **kwargs)
        memory.disable_bnb_cpu_repacking(models[name])
    return models


@pytest.mark.parametrize("precision", list(PRECISIONS))
def test_measured_footprint_matches_the_sizing_estimate_within_2_percent(loaded, model_dir, precision):
    model = loaded[precision]
    kwargs = PRECISIONS[precision]
    measured = memory.model_footprint(model)
    estimate = loading.loading_estimate(
        model_dir, kwargs["dtype"], kwargs.get("quantization_config"), context_length=0, overhead=0
    )
    assert abs(estimate.weights - measured) / measured < 0.02
    assert estimate.total == estimate.weights  # no KV cache, no overhead asked for
    assert measured >= model.get_memory_footprint()


def test_breakdown_shows_what_each_precision_stores(loaded):
    fp32 = memory.footprint_breakdown(loaded["fp32"])
    assert set(fp32) == {"float32"}
    bf16 = memory.footprint_breakdown(loaded["bf16"])
    assert bf16["bfloat16"] * 2 == pytest.approx(fp32["float32"], rel=1e-4)
    int8 = memory.footprint_breakdown(loaded["int8"])
    assert {"int8", "float16", "quant_state"} <= set(int8)
    nf4, nf4_dq = (memory.footprint_breakdown(loaded[p]) for p in ("nf4", "nf4-dq"))
    assert nf4["uint8"] * 2 == int8["int8"]  # two 4-bit weights per byte
    assert nf4_dq["quant_state"] < nf4["quant_state"] / 2  # double quantization shrinks the scales
    # what get_memory_footprint leaves out is exactly the quantization state
    assert memory.model_footprint(loaded["nf4"]) - loaded["nf4"].get_memory_footprint() == nf4["quant_state"]


def test_4bit_footprint_is_stable_through_a_forward_pass(loaded):
    model = loaded["nf4-dq"]
    assert all(not getattr(m, "support_avx512bf16_for_cpu", False) for m in model.modules())
    before = memory.model_footprint(model)
    with torch.no_grad():
        model(torch.tensor([[1, 2, 3, 4]], device=model.device))
    assert memory.model_footprint(model) == before


@pytest.mark.parametrize("precision", ["fp32", "bf16", "nf4"])
def test_kv_cache_measured_equals_the_formula(loaded, precision):
    rows = memory.measure_kv_cache(loaded[precision], [8, 64, 200], batch_size=2)
    assert [r.tokens for r in rows] == [8, 64, 200]
    for row in rows:
        assert row.measured_bytes == row.formula_bytes > 0
    bytes_per_value = 4 if precision == "fp32" else 2
    assert rows[0].measured_bytes == 2 * 4 * 4 * 32 * bytes_per_value * 8 * 2  # 2·layers·kv_heads·head_dim·B·T·batch


def test_kv_cache_bad_input(loaded):
    with pytest.raises(ValueError, match="positive whole numbers"):
        memory.measure_kv_cache(loaded["fp32"], [0])
    with pytest.raises(ValueError, match="max_position_embeddings"):
        memory.measure_kv_cache(loaded["fp32"], [5000])
    with pytest.raises(ValueError, match="transformers Cache"):
        memory.cache_bytes("not a cache")


def test_peak_memory_sees_a_short_spike():
    with memory.PeakMemory() as peak:
        spike = torch.ones(16 * 2**20)  # 64 MiB, touched, then freed at once
        del spike
    assert peak.increase_bytes >= 60 * formatting.MiB
    assert peak.end_bytes < peak.start_bytes + 32 * formatting.MiB


def test_peak_memory_sampler_alone_sees_a_spike(monkeypatch):
    monkeypatch.setattr(memory, "_reset_high_water_mark", lambda: False)  # as on macOS / Windows
    with memory.PeakMemory(interval=0.001) as peak:
        spike = torch.ones(16 * 2**20)
        time.sleep(0.05)
        del spike
    assert not peak.exact and peak.samples > 0
    assert peak.increase_bytes >= 60 * formatting.MiB


def test_peak_memory_rejects_an_unknown_device():
    with pytest.raises(ValueError, match="device must be"):
        memory.PeakMemory("tpu")
