"""Conversations with the thinking switch: questions where working it out first pays, in Qwen3's format.

With thinking on (`apply_chat_template(..., enable_thinking=True)`), the prompt ends in
`<|im_start|>assistant\\n<think>\\n` and the model writes its working, `\\n</think>\\n\\n`, then a short
answer. With thinking off (the default), the prompt ends in `<|im_start|>assistant\\n` as before and the
model answers directly. The template drops the thinking of earlier turns, so only the last reply of a
conversation carries a thought.

- sums and differences of two numbers: the column working (`corpus.column_steps`) goes in the thought;
  with thinking off the reply keeps it, as the model always wrote it;
- sums of three numbers ("What is 23 + 45 + 12?") and two-step word problems ("Ana has 37 apples and
  buys 48 more. Then she gives away 20..."): one working line per step in the thought; with thinking
  off the answer comes with no working at all, which a model this small mostly gets wrong;
- follow-ups that need the earlier answer ("And if she then finds 9 more?");
- greetings, facts and explanations: an empty thought.

Example:
    >>> conv = thinking_conversation(seed=1)
    >>> conv.enable_thinking in (True, False)
    True
"""

import random
from dataclasses import dataclass

from training import corpus

NAMES = [
    ("Ana", "she"),
    ("Ben", "he"),
    ("Carla", "she"),
    ("Dev", "he"),
    ("Emma", "she"),
    ("Farid", "he"),
    ("Gia", "she"),
    ("Hugo", "he"),
    ("Iris", "she"),
    ("Jon", "he"),
]
ITEMS = ["apples", "marbles", "stickers", "books", "coins", "pencils", "cookies", "cards", "shells", "stamps"]
GAINS = ["buys {n} more", "finds {n} more", "gets {n} more from a friend", "is given {n} more", "wins {n} more"]
LOSSES = ["gives away {n}", "loses {n}", "sells {n}", "gives {n} to a friend", "uses {n}"]


@dataclass
class ThinkingConversation:
    """A conversation (`corpus.Conversation`) and whether the thinking switch is on for its last reply."""

    conversation: corpus.Conversation
    enable_thinking: bool

    @property
    def turns(self):
        return self.conversation.turns

    @property
    def messages(self):
        """The chat, the last reply with its `thinking` when thinking is on (the template drops the others)."""
        chat = self.conversation.messages
        if self.enable_thinking:
            chat[-1] = {**chat[-1], "thinking": self.turns[-1].thinking}
        return chat


def _line(a, op, b):
    """One working line: `37 + 48: 7 + 8 = 15 and 30 + 40 + 10 = 80, so 85.`"""
    result = a + b if op == "+" else a - b
    return f"{a} {op} {b}: {corpus.column_steps(a, op, b)}, so {result}.", result


def _turn(persona, rng, user, thought, full, short, answer, category="arithmetic", followup=False):
    return corpus.Turn(
        user, corpus.stylize(persona, full, short, rng), category, full, str(answer), followup, thinking=thought
    )


def two_numbers(rng, persona, on):
    """A sum or difference of two numbers: the working in the thought (on) or in the reply (off)."""
    a, op, b = corpus.arithmetic_operands(rng)
    if not on:
        return corpus._arithmetic(rng, persona, op, followup_ops="")[:1]
    line, result = _line(a, op, b)
    text = f"{a} {op} {b} = {result}."
    return [_turn(persona, rng, corpus._arith_question(rng, a, op, b), line, text, f"{result}.", result)]


def three_numbers(rng, persona, on):
    """`a + b + c` or `a + b - c`, every partial result between 0 and 100."""
    while True:
        a, b, c = rng.randint(1, 60), rng.randint(1, 60), rng.randint(1, 60)
        op = rng.choice("+-")
        if a + b <= 100 and 0 <= (a + b + c if op == "+" else a + b - c) <= 100:
            break
    first, ab = _line(a, "+", b)
    second, result = _line(ab, op, c)
    expression = f"{a} + {b} {op} {c}"
    user = rng.choice(
        [f"What is {expression}?", f"What's {expression}?", f"Compute {expression}.", f"How much is {expression}?"]
        + (
            [f"Add {a}, {b} and {c}.", f"What is the sum of {a}, {b} and {c}?", f"{a} plus {b} plus {c}?"]
            if op == "+"
            else [f"What is {a} plus {b} minus {c}?"]
        )
    )
    return [_turn(persona, rng, user, f"{first}\n{second}", f"{expression} = {result}.", f"{result}.", result)]


def word_problem(rng, persona, on):
    """A two-step story: someone has `a` things, gains `b`, then loses `c` (or the other way round)."""
    name, pronoun = rng.choice(NAMES)
    item = rng.choice(ITEMS)
    while True:
        a, b, c = rng.randint(5, 60), rng.randint(2, 50), rng.randint(2, 50)
        gain_first = rng.random() < 0.6
        middle = a + b if gain_first else a - c
        end = middle - c if gain_first else middle + b
        if 0 <= middle <= 100 and 0 <= end <= 100:
            break
    steps = [("+", b, rng.choice(GAINS)), ("-", c, rng.choice(LOSSES))]
    if not gain_first:
        steps.reverse()
    (op1, n1, verb1), (op2, n2, verb2) = steps
    first, _ = _line(a, op1, n1)
    second, _ = _line(middle, op2, n2)
    user = f"{name} has {a} {item} and {verb1.format(n=n1)}. Then {pronoun} {verb2.format(n=n2)}. " + rng.choice(
        [f"How many {item} does {name} have now?", f"How many {item} are left?", "How many now?"]
    )
    thought = f"{name} starts with {a}.\n{first}\n{second}"
    return [_turn(persona, rng, user, thought, f"{name} has {end} {item} now.", f"{end}.", end)]


def followup(rng, persona, on, turns):
    """One more step on the last answer ("And if she then finds 9 more?"), its working in the thought."""
    previous = int(turns[-1].answer)
    op = "+" if previous <= 60 or rng.random() < 0.3 and previous < 95 else "-"
    n = rng.randint(1, min(40, 100 - previous) if op == "+" else min(40, previous))
    user = rng.choice(
        [f"And if you add {n} more?", f"Now add {n}.", f"Plus {n}?", f"And then {n} more?"]
        if op == "+"
        else [f"And if you take away {n}?", f"Now subtract {n}.", f"Minus {n}?", f"And then {n} fewer?"]
    )
    line, result = _line(previous, op, n)
    return [_turn(persona, rng, user, line, f"{previous} {op} {n} = {result}.", f"{result}.", result, followup=True)]


MULTI_STEP = {"three_numbers": three_numbers, "word_problem": word_problem}
KINDS = {
    "two_numbers": (two_numbers, 0.25),
    "three_numbers": (three_numbers, 0.3),
    "word_problem": (word_problem, 0.3),
    "other": (None, 0.15),
}
OTHER = [
    corpus._capital,
    corpus._legs,
    corpus._colour,
    corpus._count,
    corpus._topic,
    corpus._greeting,
    corpus._city_fun,
    corpus._city_country,
]


def exchange(rng, persona, kind, on):
    """The turns of one exchange of `kind` (a key of KINDS); "other" is a fact, greeting or explanation."""
    if kind == "other":
        turns = rng.choice(OTHER)(rng, persona)[:1]
        return turns  # an empty thought
    return KINDS[kind][0](rng, persona, on)


def thinking_conversation(seed=None, rng=None, enable_thinking=None):
    """One conversation for the thinking stage: one or two exchanges, maybe a follow-up, the switch drawn."""
    rng = rng or random.Random(seed)
    on = rng.random() < 0.5 if enable_thinking is None else enable_thinking
    base = corpus.conversation(rng=rng)  # a persona and system prompt, drawn as for any conversation
    conv = corpus.Conversation(base.persona, base.system)
    kinds, weights = zip(*[(k, w) for k, (_, w) in KINDS.items()])
    for _ in range(rng.choice([1, 1, 2])):
        conv.turns += exchange(rng, conv.persona, rng.choices(kinds, weights)[0], on)
    if conv.turns[-1].category == "arithmetic" and rng.random() < 0.25:
        conv.turns += followup(rng, conv.persona, on, conv.turns)
    return ThinkingConversation(conv, on)


QUESTION_KINDS = ["two_numbers", "three_numbers", "word_problem", "followup", "fact"]
FACTS = [corpus._capital, corpus._legs, corpus._colour, corpus._count, corpus._city_country]


def thinking_question(rng, kind):
    """A chat that ends with a question of `kind` (one of QUESTION_KINDS), its answer and category.

    No system prompt (the default style). A follow-up comes after a first question answered directly.
    """
    if kind == "fact":
        turn = rng.choice(FACTS)(rng, "default")[0]
        chat, answer, category = [], turn.answer, "fact"
    elif kind == "followup":
        first = rng.choice([three_numbers, word_problem, two_numbers])(rng, "default", True)[0]
        chat = [{"role": "user", "content": first.user}, {"role": "assistant", "content": first.reply}]
        turn = followup(rng, "default", True, [first])[0]
        answer, category = turn.answer, "arithmetic"
    else:
        turn = KINDS[kind][0](rng, "default", True)[0]
        chat, answer, category = [], turn.answer, "arithmetic"
    return {
        "kind": kind,
        "chat": chat + [{"role": "user", "content": turn.user}],
        "answer": answer,
        "category": category,
    }


def thinking_questions(n, seed):
    """`n` held-out questions, the kinds taking turns, the same for the same `seed`."""
    rng = random.Random(seed)
    return [thinking_question(rng, QUESTION_KINDS[i % len(QUESTION_KINDS)]) for i in range(n)]
