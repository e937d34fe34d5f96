"""Measuring what a lower precision costs in quality: next-token agreement and perplexity.

Two numbers, both on held-out text (text the model was not trained on):

- next-token agreement with a reference (fp32) model: the fraction of positions where both models'
  most likely next token is the same. 100% means greedy decoding would pick the same token everywhere
  (given the same prefix); it says nothing about whether that token is right.
- perplexity: exp(mean negative log-likelihood per predicted token). Lower is better; a model that
  guesses uniformly over a vocabulary of V tokens scores V. Score it on the assistant's tokens only
  (`assistant_masks`): that is what a chat model is trained to predict; the system and user turns
  are the reader's text, and scoring them measures how well the model guesses questions.

Held-out text: `chatkit.held_out.held_out_chats()`, conversations the embedded model was not trained
on, rendered with the tokenizer's chat template, so the text looks like what a chat model sees.

Example:
    >>> import chatkit
    >>> model, tokenizer = chatkit.load_model(chatkit.embedded_model_path())
    >>> from chatkit.held_out import held_out_chats
    >>> seqs = encode_chats(tokenizer, held_out_chats(4))
    >>> next_token_agreement(model, model, seqs)     # a model agrees with itself everywhere
    1.0
"""

import math


def _encode(tokenizer, chat, index):
    """(token ids, [(start, end) character offsets], rendered text) of a chat, as the template writes it."""
    text = tokenizer.apply_chat_template(chat, tokenize=False)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)  # the template wrote BOS
    if len(encoded["input_ids"]) < 2:
        raise ValueError(f"chat {index} renders to {len(encoded['input_ids'])} token(s); at least 2 are needed.")
    return encoded["input_ids"], encoded["offset_mapping"], text


def encode_chats(tokenizer, chats, max_tokens=512):
    """Render each chat with the tokenizer's chat template into a 1-D tensor of token ids."""
    import torch

    return [torch.tensor(_encode(tokenizer, chat, i)[0][:max_tokens], dtype=torch.long) for i, chat in enumerate(chats)]


def _assistant_spans(tokenizer, chat, text):
    """Character spans of each assistant reply in the rendered text, with the end-of-turn token after it."""
    spans, position = [], 0
    eos = tokenizer.eos_token or ""
    for message in chat:
        content = message.get("content")
        found = text.find(content, position) if isinstance(content, str) and content else -1
        if found < 0:  # empty, typed blocks or a tool call: not scored
            continue
        end = found + len(content)
        if message["role"] == "assistant":
            if eos and text.startswith(eos, end):
                end += len(eos)
            spans.append((found, end))
        position = end
    return spans


def assistant_masks(tokenizer, chats, max_tokens=512):
    """For each chat, a bool tensor over `encode_chats`' tokens: True on the assistant's tokens.

    The assistant's tokens are each reply and the end-of-turn token that closes it: what chat models
    are trained to predict (chatkit's embedded model is trained on exactly these).

    Example:
        >>> import chatkit
        >>> tokenizer = chatkit.load_tokenizer(chatkit.embedded_model_path())
        >>> chat = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
        >>> ids, mask = encode_chats(tokenizer, [chat])[0], assistant_masks(tokenizer, [chat])[0]
        >>> tokenizer.decode(ids[mask])
        'Hello!<|im_end|>'
    """
    import torch

    masks = []
    for index, chat in enumerate(chats):
        ids, offsets, text = _encode(tokenizer, chat, index)
        spans = _assistant_spans(tokenizer, chat, text)
        keep = [any(s <= start and end <= e for s, e in spans) and end > start for start, end in offsets]
        masks.append(torch.tensor(keep[:max_tokens], dtype=torch.bool))
    return masks


def _check_sequences(sequences):
    if not sequences:
        raise ValueError("no sequences given: pass a list of 1-D token-id tensors (see encode_chats).")
    for index, seq in enumerate(sequences):
        if seq.dim() != 1 or seq.numel() < 2:
            raise ValueError(
                f"sequence {index} must be a 1-D tensor of at least 2 token ids, got shape {tuple(seq.shape)}."
            )


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


def _check_masks(sequences, masks):
    if masks is not None and (
        len(masks) != len(sequences) or any(m.shape != s.shape for m, s in zip(masks, sequences))
    ):
        raise ValueError("masks must hold one bool tensor per sequence, of the same length (assistant_masks).")


def _scored_losses(logits, seq, mask):
    """Negative log-likelihood of each predicted token of `seq`, only where `mask` (if any) is True."""
    import torch.nn.functional as F

    losses = F.cross_entropy(logits, seq[1:], reduction="none")
    return losses if mask is None else losses[mask[1:]]


def _perplexity(nll, count):
    if count == 0:
        raise ValueError("the masks select no token to score: do the chats have assistant replies?")
    return math.exp(nll / count)


def perplexity(model, sequences, masks=None):
    """exp(mean negative log-likelihood) over the predicted tokens of all sequences.

    Without `masks`, every token after the first is scored; with `masks` (see `assistant_masks`),
    only the tokens where the mask is True.
    """
    _check_sequences(sequences)
    _check_masks(sequences, masks)
    nll = count = 0
    for index, seq in enumerate(sequences):
        losses = _scored_losses(_logits(model, seq), seq, None if masks is None else masks[index])
        nll, count = nll + float(losses.sum()), count + losses.numel()
    return _perplexity(nll, count)


def agreement_and_perplexity(model, reference, sequences, masks=None):
    """(`next_token_agreement`, `perplexity`) of `model` with one forward pass per sequence, not two.

    `reference` is the output of `next_token_predictions(reference_model, sequences)`.
    """
    _check_sequences(sequences)
    _check_masks(sequences, masks)
    if len(reference) != len(sequences):
        raise ValueError(f"reference has {len(reference)} sequences, but {len(sequences)} were given.")
    same = total = nll = count = 0
    for index, seq in enumerate(sequences):
        logits = _logits(model, seq)
        predicted = logits.argmax(-1)
        if predicted.shape != reference[index].shape:
            raise ValueError("reference predictions were computed on other sequences (lengths differ).")
        same, total = same + int((predicted == reference[index]).sum()), total + predicted.numel()
        losses = _scored_losses(logits, seq, None if masks is None else masks[index])
        nll, count = nll + float(losses.sum()), count + losses.numel()
    return same / total, _perplexity(nll, count)
