"""chatkit.assisted: assisted generation and prompt lookup give exactly greedy's output."""

import pytest
import torch
from helpers import greedy

from chatkit import assisted, toy_models


@pytest.fixture(scope="module")
def target(chat_model):
    model, _ = chat_model
    return toy_models.zero_pad_mlp(model, 4 * model.config.intermediate_size)


@pytest.fixture(scope="module")
def draft(chat_model):
    model, _ = chat_model
    return toy_models.random_llama(64, 1, vocab_size=model.config.vocab_size, head_dim=32)


def test_assisted_output_equals_greedy(target, draft, prompt):
    result = assisted.compare_assisted(target, prompt, draft=draft, new_tokens=12, repeats=1, force_length=True)
    assert result.identical and result.method == "assisted"
    assert 0 <= result.acceptance_rate <= 1
    assert result.tokens_per_target_pass >= 1 and result.speedup > 0
    assert torch.equal(greedy(target, prompt, 12, assistant_model=draft), greedy(target, prompt, 12))


def test_prompt_lookup_output_equals_greedy(target, prompt):
    result = assisted.compare_assisted(
        target, prompt, prompt_lookup_tokens=5, new_tokens=12, repeats=1, force_length=True
    )
    assert result.identical and result.acceptance_rate is None and result.method == "prompt_lookup"
    assert torch.equal(greedy(target, prompt, 12, prompt_lookup_num_tokens=5), greedy(target, prompt, 12))


def test_a_model_agrees_with_itself(target, chat_model, prompt):
    model, _ = chat_model
    with torch.inference_mode():  # not forced past the end token: every token is the model's own argmax
        output = target.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=False, max_new_tokens=10)
    assert assisted.draft_agreement(model, output, prompt.shape[1]) == 1.0


def test_compare_assisted_needs_exactly_one_method(target, draft, prompt):
    with pytest.raises(ValueError, match="exactly one"):
        assisted.compare_assisted(target, prompt)
    with pytest.raises(ValueError, match="exactly one"):
        assisted.compare_assisted(target, prompt, draft=draft, prompt_lookup_tokens=3)
