"""Held-out chats and questions: text the embedded model was not trained on, shipped with chatkit.

The course's corpus generator (`training/corpus.py`) writes them with seeds that training does not
use; `scripts/build_held_out.py` stores them in `chatkit/data/held_out.json`, so they are there when
chatkit is installed from a wheel (on Colab) as well as in a checkout.

- `held_out_chats(n)`: whole conversations, for perplexity and next-token agreement (notebook 04);
- `held_out_questions(n)`: a chat up to a question with a known answer, and `is_correct(question,
  reply)`: the check `training/evaluate.py` scores the embedded model with (notebook 03);
- `held_out_calculator_questions(n)`: sums, differences and products with the tool that answers
  each (notebook 07);
- `held_out_thinking_questions(n)`: questions where thinking pays and where it does not (notebook 09).

Example:
    >>> question = held_out_questions(1)[0]
    >>> question["chat"][-1]["role"], is_correct(question, f"The answer is {question['answer']}.")
    ('user', True)
"""

import json
import re
from functools import lru_cache
from pathlib import Path

DATA_FILE = Path(__file__).parent / "data" / "held_out.json"

# training/train.py draws its batches from seeds ≥ 7,919 and training/evaluate.py evaluates on 1,000;
# 4,242 is neither, so these conversations were not trained on.
CHATS_SEED = 4242


@lru_cache(maxsize=1)
def _data():
    return json.loads(DATA_FILE.read_text(encoding="utf-8"))


def _take(items, n, what):
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a whole number ≥ 1, not {n!r}.")
    if n > len(items):
        raise ValueError(f"chatkit ships {len(items)} held-out {what}; ask for at most that many, not {n}.")
    return json.loads(json.dumps(items[:n]))  # a deep copy: callers may change what they get


def held_out_chats(n=16):
    """The first `n` held-out chats (lists of {"role", "content"} messages)."""
    return _take(_data()["chats"], n, "chats")


def held_out_questions(n=48):
    """The first `n` held-out questions: {"chat": [...up to the question], "answer": ..., "category": ...}."""
    return _take(_data()["questions"], n, "questions")


def held_out_calculator_questions(n=48):
    """The first `n` held-out sums, differences and products, each with the tool that answers it
    ({"chat", "answer", "category", "tool"}): what notebook 07 asks with and without a calculator."""
    return _take(_data()["calculator_questions"], n, "calculator questions")


def held_out_thinking_questions(n=60):
    """The first `n` held-out questions for thinking on and off ({"kind", "chat", "answer", "category"}):
    the kinds take turns: sums of two numbers, of three, two-step word problems, follow-ups on the earlier
    answer, and facts (notebook 09)."""
    return _take(_data()["thinking_questions"], n, "thinking questions")


def held_out_source():
    """Where the held-out text comes from, in words (for printing)."""
    return "the course's corpus generator (training/corpus.py), with seeds training does not use"


def final_number(text):
    """A reply's final result: the last number that ends a sentence ("..., so 37 + 48 = 85."), else
    the number after the last "=", else the last number; None when there is no number."""
    ends = re.findall(r"(-?\d+)\.(?!\d)", text)
    if ends:
        return ends[-1]
    after = re.findall(r"-?\d+", text.rsplit("=", 1)[1]) if "=" in text else []
    found = after or re.findall(r"-?\d+", text)
    return (after[0] if after else found[-1]) if found else None


def answer_is_correct(answer, category, reply):
    """True when `reply` contains the expected `answer` (for arithmetic: as its final number)."""
    if category == "arithmetic":
        return final_number(reply) == answer
    if answer.isdigit():
        return re.search(rf"(?<!\d){answer}(?!\d)", reply) is not None
    return answer.lower() in reply.lower()


def is_correct(question, reply):
    """`answer_is_correct` for a question of `held_out_questions()`."""
    return answer_is_correct(question["answer"], question["category"], reply)
