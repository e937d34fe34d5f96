"""chatkit.toy_models: random Llamas and ladders, MoE twins, and the zero-padded (same function) target."""

import pytest
import torch
from helpers import greedy

from chatkit import counting, speed, toy_models


def test_ladder_builds_and_grows():
    quick = toy_models.ladder_configs(quick=True, max_weight_bytes=10**12)
    sizes = [counting.count_parameters(c).total for c in quick]
    assert len(quick) == 4 and sizes == sorted(sizes) and 5e6 < sizes[0] and 4e8 < sizes[-1] < 6e8
    # every rung is at least twice the one before
    assert all(big > 2 * small for small, big in zip(sizes, sizes[1:]))
    full = toy_models.ladder_configs(quick=False, max_weight_bytes=10**12)
    assert len(full) > len(quick) and counting.count_parameters(full[-1]).total > sizes[-1]
    assert len(toy_models.ladder_configs(quick=False, max_weight_bytes=200e6)) == 2  # 7M and 27M in fp32
    model = toy_models.random_model(quick[0])
    assert sum(p.numel() for p in model.parameters()) == sizes[0]


def test_gpu_ladder_has_real_models_shapes():
    configs = toy_models.ladder_configs(device="cuda", dtype="bfloat16", max_weight_bytes=10**12)
    billions = [round(counting.count_parameters(c).total / 1e9, 2) for c in configs]
    assert billions == [1.24, 3.21, 8.03]  # Llama 3.2 1B and 3B, Llama 3 8B
    assert len(toy_models.ladder_configs(device="cuda", dtype="bfloat16", max_weight_bytes=8e9)) == 2


def test_bad_dtype_is_a_clear_error():
    with pytest.raises(ValueError, match="dtype"):
        toy_models.random_llama(128, 1, dtype="float8")


def test_random_moe_rejects_bad_routing():
    with pytest.raises(ValueError, match="experts_per_token"):
        toy_models.random_moe(num_experts=4, experts_per_token=5)


# ------------------------------------------------------------------- zero-padded target


def test_zero_padded_target_computes_the_same_function(chat_model, prompt):
    model, _ = chat_model
    width = toy_models.intermediate_size_for(model, 4 * speed.weight_bytes_per_token(model))
    target = toy_models.zero_pad_mlp(model, width)
    assert target.config.intermediate_size == width > model.config.intermediate_size
    assert model.config.intermediate_size != width  # the original is untouched
    assert speed.weight_bytes_per_token(target) == pytest.approx(4 * speed.weight_bytes_per_token(model), rel=0.05)
    with torch.inference_mode():
        torch.testing.assert_close(target(prompt).logits, model(prompt).logits, rtol=1e-5, atol=1e-5)
    assert torch.equal(greedy(target, prompt, 12), greedy(model, prompt, 12))


def test_zero_pad_rejects_bad_input(chat_model, moe_family):
    model, _ = chat_model
    with pytest.raises(ValueError, match="intermediate_size"):
        toy_models.zero_pad_mlp(model, model.config.intermediate_size - 1)
    with pytest.raises(ValueError, match="Llama-family"):
        toy_models.zero_pad_mlp(moe_family["moe"], 4096)


def test_perturbed_copy_changes_weights_by_the_asked_noise_and_leaves_the_original(small_llama):
    noisy = toy_models.perturbed_copy(small_llama, noise=0.4, seed=1)
    before = small_llama.model.layers[0].mlp.up_proj.weight
    after = noisy.model.layers[0].mlp.up_proj.weight
    assert not torch.equal(before, after)
    assert float((after - before).std()) == pytest.approx(0.4 * float(before.std()), rel=0.1)
    assert torch.equal(toy_models.perturbed_copy(small_llama, 0.0).model.layers[0].mlp.up_proj.weight, before)
    with pytest.raises(ValueError, match="noise"):
        toy_models.perturbed_copy(small_llama, noise=-1)


def test_fixed_cost_per_token_times_a_thin_twin():
    seconds = toy_models.fixed_cost_per_token(2, new_tokens=4, repeats=1)
    assert 0 < seconds < 1  # a 2-layer, 64-wide model: well under a second per token on any machine
