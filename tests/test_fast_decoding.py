"""chatkit.fast_decoding: the recommended path (threads, prepacked bf16 weights, compile) keeps the tokens."""

import copy

import pytest
import torch
from helpers import greedy

from chatkit import fast_decoding, toy_models


@pytest.mark.skipif(not fast_decoding._packed_bf16_supported(), reason="oneDNN bf16 not supported on this CPU")
def test_packed_bf16_weights_give_the_same_tokens(small_llama):
    model = toy_models.random_model(small_llama.config, "bfloat16")
    packed = fast_decoding.prepare_for_decoding(copy.deepcopy(model), threads=1)
    linears = sum(type(m) is torch.nn.Linear for m in model.modules())
    assert packed.chatkit_packed_layers == linears > 0
    assert not any(type(m) is torch.nn.Linear for m in packed.modules())
    ids = torch.randint(3, 512, (1, 7), generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        torch.testing.assert_close(packed(ids).logits, model(ids).logits, rtol=2e-2, atol=2e-2)
    assert torch.equal(greedy(packed, ids, 8), greedy(model, ids, 8))


def test_fp32_models_keep_torch_kernels(small_llama):
    model = fast_decoding.prepare_for_decoding(copy.deepcopy(small_llama), threads=1)
    assert model.chatkit_packed_layers == 0
    assert fast_decoding.fast_generate_kwargs(model) == {}


def test_static_compile_kwargs():
    kwargs = fast_decoding.static_compile_kwargs(compile_on_cpu=True)
    assert kwargs["cache_implementation"] == "static"
    assert kwargs["compile_config"]._compile_all_devices is True
    assert not fast_decoding.static_compile_kwargs()["compile_config"]._compile_all_devices


def test_the_plan_says_what_was_chosen_and_why(small_llama, monkeypatch):
    with pytest.raises(ValueError, match="prepare_for_decoding"):
        fast_decoding.decoding_plan(small_llama)
    plan = fast_decoding.decoding_plan(fast_decoding.prepare_for_decoding(copy.deepcopy(small_llama), threads=1))
    assert plan[0] == "threads: 1"
    assert "float32 layers keep PyTorch's own kernels" in plan
    assert any(line.startswith("generate: dynamic cache, no torch.compile") for line in plan)
    monkeypatch.setattr(fast_decoding, "_packed_bf16_supported", lambda: False)  # a CPU without fast bf16
    bf16 = fast_decoding.prepare_for_decoding(toy_models.random_model(small_llama.config, "bfloat16"), threads=1)
    assert bf16.chatkit_packed_layers == 0
    assert any("oneDNN has no fast bf16 kernels" in line for line in fast_decoding.decoding_plan(bf16))
    assert any(
        line.startswith("dtype: bfloat16 (recommended here: float32") for line in fast_decoding.decoding_plan(bf16)
    )


def test_decoding_dtype_follows_the_kernels(monkeypatch):
    monkeypatch.setattr(fast_decoding, "_packed_bf16_supported", lambda: True)
    assert fast_decoding.decoding_dtype()[0] == torch.bfloat16
    monkeypatch.setattr(fast_decoding, "_packed_bf16_supported", lambda: False)
    assert fast_decoding.decoding_dtype()[0] == torch.float32
    assert fast_decoding.decoding_dtype("cuda")[0] == torch.bfloat16
