"""Tests for chatkit.speed: relations and correctness, not timings (timings vary with the machine)."""

import pytest
import torch

import chatkit
from chatkit import speed
from chatkit.sizing import count_parameters


@pytest.fixture(scope="module")
def chat_model():
    model, tokenizer = chatkit.load_model(chatkit.embedded_model_path(), device_map=None)
    return model, tokenizer


@pytest.fixture(scope="module")
def small_llama():
    return speed.random_llama(128, 2, vocab_size=512)


@pytest.fixture(scope="module")
def prompt(chat_model):
    _, tokenizer = chat_model
    chat = [{"role": "user", "content": "What is the capital of France? Tell me about the capital of France."}]
    return tokenizer.apply_chat_template(chat, add_generation_prompt=True, return_dict=True,
                                         return_tensors="pt")["input_ids"]


def greedy(model, ids, n, **kwargs):
    with torch.inference_mode():
        return model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=n,
                              min_new_tokens=n, **kwargs)


# ------------------------------------------------------------------- threads and bandwidth

def test_set_threads_sets_and_validates(monkeypatch):
    assert speed.set_threads(1) == 1 == torch.get_num_threads()
    monkeypatch.setenv(speed.THREADS_ENV_VAR, "1")
    assert speed.set_threads() == 1
    monkeypatch.setenv(speed.THREADS_ENV_VAR, "two")
    with pytest.raises(ValueError, match="CHATKIT_THREADS"):
        speed.set_threads()
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match="threads"):
            speed.set_threads(bad)


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
    bf16 = speed.random_model(config, "bfloat16")
    assert speed.weight_bytes_per_token(bf16) * 2 == speed.weight_bytes_per_token(small_llama)


def test_tied_embedding_is_read_in_full():
    model = speed.random_llama(128, 2, vocab_size=512, tie_word_embeddings=True)
    total = sum(p.numel() for p in model.parameters())  # the tied matrix is listed once
    assert speed.weight_bytes_per_token(model) == total * 4


@pytest.fixture(scope="module")
def moe_family():
    return speed.random_moe(hidden_size=128, num_layers=2, num_experts=4, experts_per_token=2,
                            expert_size=128, vocab_size=512)


def test_moe_reads_only_active_experts(moe_family):
    moe, total, active = (speed.weight_bytes_per_token(moe_family[k])
                          for k in ("moe", "dense_same_total", "dense_same_active"))
    assert active < moe < total
    router = 2 * 128 * 4 * 4  # layers × hidden × experts × 4 bytes
    assert moe - active == router
    counts = {k: count_parameters(m.config).total for k, m in moe_family.items()}
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


def test_random_moe_rejects_bad_routing():
    with pytest.raises(ValueError, match="experts_per_token"):
        speed.random_moe(num_experts=4, experts_per_token=5)


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


def test_ladder_builds_and_grows():
    quick = speed.ladder_configs(quick=True)
    sizes = [count_parameters(c).total for c in quick]
    assert len(quick) == 3 and sizes == sorted(sizes) and 5e6 < sizes[0] and sizes[-1] < 1e8
    full = speed.ladder_configs(quick=False, max_weight_bytes=10**12)
    assert len(full) > len(quick) and 4e8 < count_parameters(full[-1]).total < 6e8
    assert len(speed.ladder_configs(quick=False, max_weight_bytes=200e6)) == 2  # 7M and 27M in fp32
    model = speed.random_model(quick[0])
    assert sum(p.numel() for p in model.parameters()) == sizes[0]


def test_bad_dtype_is_a_clear_error():
    with pytest.raises(ValueError, match="dtype"):
        speed.random_llama(128, 1, dtype="float8")


# ------------------------------------------------------------------- zero-padded target

def test_zero_padded_target_computes_the_same_function(chat_model, prompt):
    model, _ = chat_model
    width = speed.intermediate_size_for(model, 4 * speed.weight_bytes_per_token(model))
    target = speed.zero_pad_mlp(model, width)
    assert target.config.intermediate_size == width > model.config.intermediate_size
    assert model.config.intermediate_size != width  # the original is untouched
    assert speed.weight_bytes_per_token(target) == pytest.approx(4 * speed.weight_bytes_per_token(model), rel=0.05)
    with torch.inference_mode():
        torch.testing.assert_close(target(prompt).logits, model(prompt).logits, rtol=1e-5, atol=1e-5)
    assert torch.equal(greedy(target, prompt, 12), greedy(model, prompt, 12))


def test_zero_pad_rejects_bad_input(chat_model, moe_family):
    model, _ = chat_model
    with pytest.raises(ValueError, match="intermediate_size"):
        speed.zero_pad_mlp(model, model.config.intermediate_size - 1)
    with pytest.raises(ValueError, match="Llama-family"):
        speed.zero_pad_mlp(moe_family["moe"], 4096)


# ------------------------------------------------------------------- assisted generation

@pytest.fixture(scope="module")
def target(chat_model):
    model, _ = chat_model
    return speed.zero_pad_mlp(model, 4 * model.config.intermediate_size)


@pytest.fixture(scope="module")
def draft(chat_model):
    model, _ = chat_model
    return speed.random_llama(64, 1, vocab_size=model.config.vocab_size, head_dim=32)


def test_assisted_output_equals_greedy(target, draft, prompt):
    result = speed.compare_assisted(target, prompt, draft=draft, new_tokens=12, repeats=1, force_length=True)
    assert result.identical and result.method == "assisted"
    assert 0 <= result.acceptance_rate <= 1
    assert result.tokens_per_target_pass >= 1 and result.speedup > 0
    assert torch.equal(greedy(target, prompt, 12, assistant_model=draft), greedy(target, prompt, 12))


def test_prompt_lookup_output_equals_greedy(target, prompt):
    result = speed.compare_assisted(target, prompt, prompt_lookup_tokens=5, new_tokens=12, repeats=1,
                                    force_length=True)
    assert result.identical and result.acceptance_rate is None and result.method == "prompt_lookup"
    assert torch.equal(greedy(target, prompt, 12, prompt_lookup_num_tokens=5), greedy(target, prompt, 12))


def test_a_model_agrees_with_itself(target, chat_model, prompt):
    model, _ = chat_model
    with torch.inference_mode():  # not forced past the end token: every token is the model's own argmax
        output = target.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=False, max_new_tokens=10)
    assert speed.draft_agreement(model, output, prompt.shape[1]) == 1.0


def test_compare_assisted_needs_exactly_one_method(target, draft, prompt):
    with pytest.raises(ValueError, match="exactly one"):
        speed.compare_assisted(target, prompt)
    with pytest.raises(ValueError, match="exactly one"):
        speed.compare_assisted(target, prompt, draft=draft, prompt_lookup_tokens=3)


# ------------------------------------------------------------------- the recommended path

@pytest.mark.skipif(not speed._packed_bf16_supported(), reason="oneDNN bf16 not supported on this CPU")
def test_packed_bf16_weights_give_the_same_tokens(small_llama):
    import copy

    model = speed.random_model(small_llama.config, "bfloat16")
    packed = speed.prepare_for_decoding(copy.deepcopy(model), threads=1)
    linears = sum(type(m) is torch.nn.Linear for m in model.modules())
    assert packed.chatkit_packed_layers == linears > 0
    assert not any(type(m) is torch.nn.Linear for m in packed.modules())
    ids = torch.randint(3, 512, (1, 7), generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        torch.testing.assert_close(packed(ids).logits, model(ids).logits, rtol=2e-2, atol=2e-2)
    assert torch.equal(greedy(packed, ids, 8), greedy(model, ids, 8))


def test_fp32_models_keep_torch_kernels(small_llama):
    import copy

    model = speed.prepare_for_decoding(copy.deepcopy(small_llama), threads=1)
    assert model.chatkit_packed_layers == 0
    assert speed.fast_generate_kwargs(model) == {}


def test_static_compile_kwargs():
    kwargs = speed.static_compile_kwargs(compile_on_cpu=True)
    assert kwargs["cache_implementation"] == "static"
    assert kwargs["compile_config"]._compile_all_devices is True
    assert not speed.static_compile_kwargs()["compile_config"]._compile_all_devices
