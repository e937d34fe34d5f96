import math

import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

import chatkit
from chatkit import quality
from chatkit.held_out import held_out_chats


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(chatkit.embedded_model_path())


@pytest.fixture(scope="module")
def tiny_model(tokenizer):
    torch.manual_seed(0)
    config = LlamaConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        vocab_size=len(tokenizer),
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="module")
def sequences(tokenizer):
    return quality.encode_chats(tokenizer, held_out_chats(3))


def test_a_model_agrees_with_itself_and_with_its_own_predictions(tiny_model, sequences):
    assert quality.next_token_agreement(tiny_model, tiny_model, sequences) == 1.0
    reference = quality.next_token_predictions(tiny_model, sequences)
    assert [len(r) for r in reference] == [len(s) - 1 for s in sequences]
    assert quality.next_token_agreement(tiny_model, reference, sequences) == 1.0


def test_agreement_counts_the_positions_that_differ(tiny_model, sequences):
    reference = quality.next_token_predictions(tiny_model, sequences)
    changed = [r.clone() for r in reference]
    changed[0][:10] += 1  # ten positions where the "reference" predicts another token
    total = sum(len(r) for r in reference)
    assert quality.next_token_agreement(tiny_model, changed, sequences) == pytest.approx(1 - 10 / total)


def test_perplexity_of_a_uniform_model_is_the_vocabulary_size(tiny_model, sequences):
    uniform = LlamaForCausalLM(tiny_model.config).eval()
    with torch.no_grad():
        uniform.lm_head.weight.zero_()  # every logit 0: each token has probability 1/V
    assert quality.perplexity(uniform, sequences) == pytest.approx(tiny_model.config.vocab_size, rel=1e-5)
    assert math.isfinite(quality.perplexity(tiny_model, sequences))


def test_bad_input_says_what_to_pass(tiny_model, sequences):
    with pytest.raises(ValueError, match="no sequences"):
        quality.perplexity(tiny_model, [])
    with pytest.raises(ValueError, match="sequence 0 must be a 1-D tensor"):
        quality.perplexity(tiny_model, [torch.tensor([[1, 2]])])
    with pytest.raises(ValueError, match="computed on other sequences"):
        reference = quality.next_token_predictions(tiny_model, sequences)
        quality.next_token_agreement(tiny_model, reference[::-1], sequences)


def test_perplexity_on_assistant_tokens_only(tokenizer):
    model, _ = chatkit.load_model(chatkit.embedded_model_path())
    chats = held_out_chats(4)
    sequences, masks = quality.encode_chats(tokenizer, chats), quality.assistant_masks(tokenizer, chats)
    for chat, ids, mask in zip(chats, sequences, masks):
        assert mask.shape == ids.shape and 0 < int(mask.sum()) < len(ids)
        decoded = tokenizer.decode(ids[mask])
        replies = [m["content"] for m in chat if m["role"] == "assistant"]
        assert decoded == "".join(reply + tokenizer.eos_token for reply in replies)
    # the model was trained on these tokens only: it predicts them far better than the rest
    assert quality.perplexity(model, sequences, masks) < quality.perplexity(model, sequences) / 10
    reference = quality.next_token_predictions(model, sequences)
    assert quality.agreement_and_perplexity(model, reference, sequences, masks) == (
        quality.next_token_agreement(model, reference, sequences),
        quality.perplexity(model, sequences, masks),
    )
    with pytest.raises(ValueError, match="one bool tensor per sequence"):
        quality.perplexity(model, sequences, masks[:1])
