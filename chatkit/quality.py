"""Measuring what a lower precision costs in quality: next-token agreement and perplexity.

Two numbers, both on held-out text (text the model was not trained on):

- next-token agreement with a reference (fp32) model: the fraction of positions where both models'
  most likely next token is the same. 100% means greedy decoding would pick the same token everywhere
  (given the same prefix); it says nothing about whether that token is right.
- perplexity: exp(mean negative log-likelihood per predicted token). Lower is better; a model that
  guesses uniformly over a vocabulary of V tokens scores V.

Held-out text: conversations from the course's corpus generator (`training/corpus.py`, present in a
checkout of the repository) drawn with `HELD_OUT_SEED`, a seed training does not use; where the
generator is absent (e.g. chatkit installed from a wheel on Colab), a few fixed chats written here.
Each chat is rendered with the tokenizer's chat template, so the text looks like what a chat model sees.

Example:
    >>> seqs = encode_chats(tokenizer, held_out_chats())                  # doctest: +SKIP
    >>> next_token_agreement(model_4bit, model_fp32, seqs), perplexity(model_4bit, seqs)  # doctest: +SKIP
"""

import importlib.util
import math
from pathlib import Path

# training/train.py draws its batches from seeds ≥ 7,919 and training/evaluate.py evaluates on 1,000;
# 4,242 is neither, so these conversations were not trained on.
HELD_OUT_SEED = 4242

# Used when the corpus generator is not available (chatkit installed without the repository).
FALLBACK_CHATS = [
    [{"role": "user", "content": "What is the capital of France?"},
     {"role": "assistant", "content": "The capital of France is Paris."}],
    [{"role": "system", "content": "You are a helpful assistant."},
     {"role": "user", "content": "How many legs does a spider have?"},
     {"role": "assistant", "content": "A spider has 8 legs."}],
    [{"role": "user", "content": "What is bf16?"},
     {"role": "assistant", "content": "bf16 is a 16-bit number format with the same range as float32 "
                                      "but less precision. It halves the memory of the weights."}],
    [{"role": "user", "content": "Hello! How are you today?"},
     {"role": "assistant", "content": "I am doing well, thank you. How can I help you?"},
     {"role": "user", "content": "What is 12 + 30?"},
     {"role": "assistant", "content": "12 + 30 = 42."}],
]


def _corpus_module():
    """training/corpus.py of the repository chatkit was installed from, or None when absent."""
    path = Path(__file__).resolve().parent.parent / "training" / "corpus.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("_chatkit_training_corpus", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def held_out_chats(n=16, seed=HELD_OUT_SEED):
    """`n` held-out chats (lists of messages): from the corpus generator when present, else `FALLBACK_CHATS`."""
    if n < 1:
        raise ValueError(f"n must be at least 1, not {n!r}.")
    corpus = _corpus_module()
    if corpus is None:
        return [FALLBACK_CHATS[i % len(FALLBACK_CHATS)] for i in range(n)]
    return [conv.messages for conv in corpus.conversations(n, seed=seed)]


def held_out_source():
    """Where `held_out_chats()` comes from, in words (for printing)."""
    if _corpus_module() is None:
        return "fixed chats in chatkit.quality (the corpus generator is not installed)"
    return f"the course's corpus generator, seed {HELD_OUT_SEED} (not used for training)"


def encode_chats(tokenizer, chats, max_tokens=512):
    """Render each chat with the tokenizer's chat template into a 1-D tensor of token ids."""
    import torch

    sequences = []
    for index, chat in enumerate(chats):
        ids = tokenizer.apply_chat_template(chat, tokenize=True, return_dict=False)
        if len(ids) < 2:
            raise ValueError(f"chat {index} renders to {len(ids)} token(s); at least 2 are needed.")
        sequences.append(torch.tensor(ids[:max_tokens], dtype=torch.long))
    return sequences


def _check_sequences(sequences):
    if not sequences:
        raise ValueError("no sequences given: pass a list of 1-D token-id tensors (see encode_chats).")
    for index, seq in enumerate(sequences):
        if seq.dim() != 1 or seq.numel() < 2:
            raise ValueError(f"sequence {index} must be a 1-D tensor of at least 2 token ids, "
                             f"got shape {tuple(seq.shape)}.")


def _logits(model, seq):
    import torch

    device = next(model.parameters()).device
    with torch.no_grad():
        return model(seq.unsqueeze(0).to(device)).logits[0, :-1].float().cpu()


def next_token_predictions(model, sequences):
    """The model's most likely next token at every position of every sequence (one tensor each)."""
    _check_sequences(sequences)
    return [_logits(model, seq).argmax(-1) for seq in sequences]


def next_token_agreement(model, reference, sequences):
    """Fraction of positions where `model` and `reference` predict the same most likely next token.

    `reference` is a model or the output of `next_token_predictions(reference_model, sequences)`
    (compute it once when comparing several models with the same reference).
    """
    if not isinstance(reference, list):
        reference = next_token_predictions(reference, sequences)
    predictions = next_token_predictions(model, sequences)
    if len(reference) != len(predictions):
        raise ValueError(f"reference has {len(reference)} sequences, but {len(predictions)} were given.")
    same = total = 0
    for ours, theirs in zip(predictions, reference):
        if ours.shape != theirs.shape:
            raise ValueError("reference predictions were computed on other sequences (lengths differ).")
        same += int((ours == theirs).sum())
        total += ours.numel()
    return same / total


def perplexity(model, sequences):
    """exp(mean negative log-likelihood) of every token after the first, over all sequences."""
    import torch.nn.functional as F

    _check_sequences(sequences)
    nll = count = 0.0
    for seq in sequences:
        logits = _logits(model, seq)
        nll += float(F.cross_entropy(logits, seq[1:], reduction="sum"))
        count += seq.numel() - 1
    return math.exp(nll / count)
