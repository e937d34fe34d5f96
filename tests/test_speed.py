"""Tests for chatkit.speed: relations and correctness, not timings (timings vary with the machine).

The models come from chatkit.toy_models (fixtures small_llama and moe_family in conftest.py).
"""

import pytest
import torch
from helpers import greedy

from chatkit import counting, speed, toy_models

# ------------------------------------------------------------------- bandwidth


def test_bandwidth_is_positive_and_sane():
    bw = speed.measure_bandwidth(size_mib=32, repeats=2)
    assert bw.device == "cpu"
    for value in (bw.copy_gb_s, bw.read_gb_s):
        assert 0.1 < value < 10_000  # GB/s: anything outside is a units bug
    assert set(bw.as_dict()) == {"device", "copy_gb_s", "read_gb_s", "size_mib"}


@pytest.mark.parametrize("kwargs", [{"size_mib": 1}, {"repeats": 0}, {"size_mib": 64.5}])
def test_bandwidth_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        speed.measure_bandwidth(**kwargs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_gpu_bandwidth():
    bw = speed.measure_bandwidth(size_mib=256, repeats=2, device="cuda")
    assert bw.device == "cuda" and bw.copy_gb_s > 10


def test_cuda_requested_without_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ValueError, match="CUDA"):
        speed.measure_bandwidth(device="cuda")


# ------------------------------------------------------------------- bytes per token


def test_bytes_per_token_counts_weights_read(small_llama):
    config = small_llama.config
    total = sum(p.numel() for p in small_llama.parameters())
    lookup = config.vocab_size * config.hidden_size  # the input embedding is only looked up
    assert speed.weight_bytes_per_token(small_llama) == (total - lookup) * 4
    bf16 = toy_models.random_model(config, "bfloat16")
    assert speed.weight_bytes_per_token(bf16) * 2 == speed.weight_bytes_per_token(small_llama)


def test_tied_embedding_is_read_in_full():
    model = toy_models.random_llama(128, 2, vocab_size=512, tie_word_embeddings=True)
    total = sum(p.numel() for p in model.parameters())  # the tied matrix is listed once
    assert speed.weight_bytes_per_token(model) == total * 4


def test_moe_reads_only_active_experts(moe_family):
    moe, total, active = (
        speed.weight_bytes_per_token(moe_family[k]) for k in ("moe", "dense_same_total", "dense_same_active")
    )
    assert active < moe < total
    router = 2 * 128 * 4 * 4  # layers × hidden × experts × 4 bytes
    assert moe - active == router
    counts = {k: counting.count_parameters(m.config).total for k, m in moe_family.items()}
    assert abs(counts["moe"] - counts["dense_same_total"]) == router // 4


def test_experts_read_grows_with_tokens(moe_family):
    moe = moe_family["moe"]
    ids = torch.randint(3, 512, (1, 8), generator=torch.Generator().manual_seed(0))
    one = speed.experts_read(moe, ids[:, :1])
    several = speed.experts_read(moe, ids)
    assert one == [2, 2]
    assert all(2 <= s <= 4 for s in several) and sum(several) >= sum(one)


def test_forward_cost_ratio_is_positive(small_llama):
    assert speed.forward_cost_ratio(small_llama, tokens=4, repeats=1, prompt_length=8) > 0


# ------------------------------------------------------------------- timing helpers


def test_decode_speed_measures_and_matches_greedy(small_llama):
    ids = torch.randint(3, 512, (1, 5), generator=torch.Generator().manual_seed(1))
    result, output = speed.decode_speed(small_llama, ids, new_tokens=6, repeats=1)
    assert result.tokens_per_s > 0 and result.first_token_s > 0
    assert result.new_tokens == 6 and result.prompt_tokens == 5
    assert torch.equal(output, greedy(small_llama, ids, 6))
    assert speed.prefill_speed(small_llama, ids, repeats=1) > 0


def test_decode_speed_rejects_bad_input(small_llama):
    with pytest.raises(ValueError, match="new_tokens"):
        speed.decode_speed(small_llama, torch.tensor([[1, 2]]), new_tokens=1)
    with pytest.raises(ValueError, match="batch 1"):
        speed.decode_speed(small_llama, torch.tensor([[1, 2], [3, 4]]), new_tokens=4)


def test_bytes_per_token_from_a_config_follows_what_bitsandbytes_stores():
    llama = "meta-llama/Meta-Llama-3-8B-Instruct"
    counts = counting.count_parameters(llama)
    vocab_times_hidden = 128256 * 4096
    # bf16: every active weight but the input embedding (a look-up of one row) is read once
    assert speed.bytes_per_token(llama, "bf16") == 2 * (counts.total - vocab_times_hidden)
    # 4-bit: the quantized layers shrink, the bf16 lm_head does not: more than a quarter of bf16
    four_bit = speed.bytes_per_token(llama, "4bit")
    assert 2 * vocab_times_hidden < four_bit and four_bit > speed.bytes_per_token(llama, "bf16") / 4
    # Mixtral: transformers 5 + bitsandbytes leave the fused experts in bf16, so 4-bit saves little per token
    mixtral = "mistralai/Mixtral-8x7B-Instruct-v0.1"
    assert speed.bytes_per_token(mixtral, "4bit") > 0.9 * speed.bytes_per_token(mixtral, "bf16")
