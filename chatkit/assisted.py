"""Assisted generation and prompt lookup: several tokens per pass of the big model, same output.

A small draft model (or, for prompt lookup, n-grams copied from the prompt) proposes a few tokens; the
target model checks them all in one forward pass and keeps the ones it would have picked itself. With
greedy decoding the output is exactly the target's own. It pays when the target's pass is
memory-bound (reading its weights costs far more than the draft's whole work) and the draft agrees
with the target often.

- `compare_assisted()`: assisted or prompt-lookup decoding against plain greedy on the same target:
  speedup, new tokens per target forward pass, the draft's acceptance rate, identical output;
- `draft_agreement()`: how often the draft's greedy token is the target's.

Example:
    >>> import chatkit
    >>> target, tokenizer = chatkit.load_model(chatkit.embedded_model_path())
    >>> draft, _ = chatkit.load_model(chatkit.embedded_draft_path())
    >>> chat = [{"role": "user", "content": "What is the capital of France?"}]
    >>> ids = tokenizer.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt",
    ...                                     return_dict=True)["input_ids"].to(target.device)
    >>> result = compare_assisted(target, ids, draft=draft, new_tokens=16, repeats=1)
    >>> result.identical, result.tokens_per_target_pass >= 1
    (True, True)
"""

import statistics
from dataclasses import asdict, dataclass

from .speed import decode_speed, model_device, timed_generate


class _ForwardCounter:
    """Counts a model's forward passes (a forward pre-hook) while in a `with` block."""

    def __init__(self, model):
        self.model, self.calls, self._handle = model, 0, None

    def _hook(self, module, args, kwargs):
        self.calls += 1

    def __enter__(self):
        self._handle = self.model.register_forward_pre_hook(self._hook, with_kwargs=True)
        return self

    def __exit__(self, *exc):
        self._handle.remove()


def draft_agreement(draft, sequence, prompt_length):
    """How often the draft's greedy next token equals the token in `sequence` (the target's greedy output).

    One teacher-forced pass of the draft over the target's output: the fraction of positions after
    the prompt where the draft would have proposed exactly the target's token. That is the per-token
    acceptance rate of greedy speculative decoding.
    """
    import torch

    with torch.inference_mode():
        logits = draft(sequence.to(model_device(draft))).logits[0]
    predicted = logits[prompt_length - 1 : -1].argmax(-1).cpu()
    actual = sequence[0, prompt_length:].cpu()
    return float((predicted == actual).float().mean())


@dataclass
class AssistedResult:
    """Plain greedy against assisted (draft model) or prompt-lookup decoding of the same target."""

    method: str
    greedy_tokens_per_s: float
    assisted_tokens_per_s: float
    speedup: float
    tokens_per_target_pass: float
    acceptance_rate: float | None
    identical: bool
    new_tokens: int

    def as_dict(self):
        return asdict(self)


def compare_assisted(
    target, input_ids, draft=None, prompt_lookup_tokens=None, new_tokens=64, repeats=3, force_length=False
):
    """Measure assisted generation (`draft=`) or prompt lookup (`prompt_lookup_tokens=`) against greedy.

    Both run the same target, prompt and length (`force_length=False`: until the end token, as a
    chat reply does), interleaved repeat by repeat so a change in the
    machine's load hits both alike. Reports decode tokens/s (prefill excluded) of each, the speedup,
    new tokens per target forward pass, the draft's per-token acceptance rate (assisted only), and
    whether the outputs are identical (they must be: greedy verification keeps exactly the target's
    greedy tokens).
    """
    if (draft is None) == (prompt_lookup_tokens is None):
        raise ValueError("pass exactly one of draft= (assisted generation) or prompt_lookup_tokens= (prompt lookup).")
    extra = {"assistant_model": draft} if draft is not None else {"prompt_lookup_num_tokens": prompt_lookup_tokens}
    plain_runs, fast_runs = [], []
    greedy_out = fast_out = None
    for repeat in range(repeats):
        plain, greedy_out = decode_speed(target, input_ids, new_tokens, 1, repeat == 0, force_length)
        fast, fast_out = decode_speed(target, input_ids, new_tokens, 1, repeat == 0, force_length, **extra)
        plain_runs.append(plain.tokens_per_s)
        fast_runs.append(fast.tokens_per_s)
    with _ForwardCounter(target) as counter:
        timed_generate(target, input_ids, new_tokens, force_length, **extra)
    # Every target pass verifies drafted tokens and yields one token of its own; the first one also
    # reads the prompt (transformers' assisted decoding has no separate prefill pass). So plain greedy
    # gives 1 token per pass, and a draft of k tokens at most k + 1.
    passes = max(counter.calls, 1)
    generated = greedy_out.shape[1] - input_ids.shape[1]
    acceptance = draft_agreement(draft, greedy_out, input_ids.shape[1]) if draft is not None else None
    greedy_rate, fast_rate = statistics.median(plain_runs), statistics.median(fast_runs)
    return AssistedResult(
        method="assisted" if draft is not None else "prompt_lookup",
        greedy_tokens_per_s=greedy_rate,
        assisted_tokens_per_s=fast_rate,
        speedup=fast_rate / greedy_rate,
        tokens_per_target_pass=generated / passes,
        acceptance_rate=acceptance,
        identical=bool(greedy_out.shape == fast_out.shape and (greedy_out == fast_out).all()),
        new_tokens=generated,
    )
