"""Thinking models: what a thought costs in tokens and seconds, and a budget that ends it.

A thinking model writes its working between `<think>` and `</think>`, then the answer (Qwen3, SmolLM3,
DeepSeek-R1 and the embedded model; the chat template's `enable_thinking` switches it where the model
has a switch). Reading the reply back is transformers' job: `tokenizer.parse_response(text, prefix=prompt)`
with the model's response template (`chatkit.tools.EMBEDDED_RESPONSE_TEMPLATE` for the embedded model and
the Qwen family). This module measures and limits:

- `timed_reply(model, tokenizer, chat, enable_thinking)` generates greedily and says how many tokens went
  into the thought, and how long the first token of the *answer* took to arrive;
- `ThinkingBudget(tokenizer, prompt_length, budget)` is a logits processor that, once the thought has
  `budget` tokens, forces the tokens of `\\n</think>\\n\\n`, so the model must answer with what it has.

Example:
    >>> import chatkit
    >>> model, tokenizer = chatkit.load_model(chatkit.embedded_model_path())
    >>> chat = [{"role": "user", "content": "What is 24 + 13 + 31?"}]
    >>> run = timed_reply(model, tokenizer, chat, enable_thinking=True)
    >>> run.thought_tokens > 0, run.seconds_to_answer <= run.seconds
    (True, True)
"""

import threading
import time
from dataclasses import dataclass

from .generation import split_thought
from .tools import EMBEDDED_RESPONSE_TEMPLATE

THINK_CLOSE = "\n</think>\n\n"  # what ends a thought in the Qwen3 format, before the answer


def response_template(tokenizer):
    """The template that reads `tokenizer`'s replies back: its own `response_template`, else the embedded
    model's (ChatML with `<think>` and `<tool_call>`: the Qwen2.5 / Qwen3 format)."""
    return getattr(tokenizer, "response_template", None) or EMBEDDED_RESPONSE_TEMPLATE


def _prompt(tokenizer, chat, enable_thinking):
    return tokenizer.apply_chat_template(
        chat, add_generation_prompt=True, tokenize=False, enable_thinking=enable_thinking
    )


@dataclass(frozen=True)
class ThinkingRun:
    """One greedy reply: its thought and answer (parsed), the tokens of each, and when they came."""

    thinking: str
    content: str
    thought_tokens: int  # tokens of the thought (all the text, if it never closed), its blank ends left out
    tokens: int  # all new tokens, the end token included
    seconds: float  # the whole reply, prefill included
    seconds_to_answer: float  # until the first token of the answer (after the thought, if any)


def timed_reply(model, tokenizer, chat, enable_thinking, max_new_tokens=256, logits_processor=None):
    """Generate a greedy reply with the thinking switch set, timing the first answer token.

    The tokens arrive through a streamer (generate runs in a thread); the answer starts at the first
    token after `</think>` that is not blank, or at the first token when nothing was thought.
    `logits_processor`: a `LogitsProcessorList` for generate, e.g. with a `ThinkingBudget`.
    """
    import torch
    from transformers import TextIteratorStreamer

    prompt = _prompt(tokenizer, chat, enable_thinking)
    inputs = tokenizer(prompt, add_special_tokens=False, return_tensors="pt").to(model.device)
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=False)
    result = {}

    def run():
        with torch.no_grad():
            result["ids"] = model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                streamer=streamer,
                logits_processor=logits_processor,
            )

    opened = prompt.rstrip().endswith("<think>")  # the template opened the thought (thinking on)
    start = time.perf_counter()
    thread = threading.Thread(target=run)
    thread.start()
    text, answer_at = "", None
    for chunk in streamer:
        text += chunk
        if answer_at is None and split_thought(text, opened)[1].strip():
            answer_at = time.perf_counter() - start
    thread.join()
    seconds = time.perf_counter() - start
    new = result["ids"][0, inputs["input_ids"].shape[1] :]
    message = tokenizer.parse_response(text, schema=response_template(tokenizer), prefix=prompt)
    thought = split_thought(text, opened)[0]
    return ThinkingRun(
        thinking=message.get("thinking", ""),
        content=message.get("content", ""),
        thought_tokens=len(tokenizer(thought, add_special_tokens=False).input_ids) if thought else 0,
        tokens=len(new),
        seconds=seconds,
        seconds_to_answer=answer_at if answer_at is not None else seconds,
    )


class ThinkingBudget:
    """A logits processor that ends the thought after `budget` new tokens by forcing `\\n</think>\\n\\n`.

    Give it to `generate(..., logits_processor=LogitsProcessorList([ThinkingBudget(...)]))` with thinking on.
    `prompt_length` is the prompt's length in tokens. From new token `budget` on, while the thought is
    still open, each step allows only the next token of the closing text; a thought that closed by itself
    is left alone. Rows of a batch are handled one by one.
    """

    def __init__(self, tokenizer, prompt_length, budget):
        if not isinstance(budget, int) or budget < 0:
            raise ValueError(f"budget must be a whole number of tokens ≥ 0, not {budget!r}.")
        self.close = tokenizer(THINK_CLOSE, add_special_tokens=False).input_ids
        self.closed_by = tokenizer("</think>", add_special_tokens=False).input_ids
        self.prompt_length, self.budget = prompt_length, budget

    def _closed(self, new):
        n = len(self.closed_by)
        return any(new[i : i + n] == self.closed_by for i in range(len(new) - n + 1))

    def __call__(self, input_ids, scores):
        for row, ids in enumerate(input_ids.tolist()):
            new = ids[self.prompt_length :]
            forced = len(new) - self.budget  # how many closing tokens were forced already
            if 0 <= forced < len(self.close) and not self._closed(new[: self.budget]):
                keep = scores[row, self.close[forced]].clone()
                scores[row] = float("-inf")
                scores[row, self.close[forced]] = keep
        return scores
