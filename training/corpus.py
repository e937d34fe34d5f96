"""The project's own chat corpus: multi-turn conversations generated deterministically from a seed.

Every conversation is a list of chat messages (system/user/assistant). Assistant turns carry a
hidden check (`Turn.check`) that the evaluation uses: the expected answer for factual and
arithmetic turns, and the persona whose style the reply must show.

Categories: greetings and small talk, fun things to do in a handful of cities, simple facts
(capitals, which country a city is in, legs of animals, colours, counts), small arithmetic (sums
and differences of numbers up to 100, with follow-ups that use the previous result) and short
explanations of the course's topics (chat templates, bf16, memory-bound decoding, quantization...).
Follow-up turns depend on earlier ones ("And what about Rome?").

Personas set by the system prompt change the style: terse, pirate, a sassy robot from 1986,
cheerful; no system prompt (or a neutral one) gives the default style.

Example:
    >>> from training.corpus import conversation
    >>> chat = conversation(seed=3).messages          # doctest: +SKIP
"""

import random
import re
from dataclasses import dataclass, field

from transformers.utils import get_json_schema

from chatkit.tools import CITY_FACTS, EMBEDDED_TOOLS, call_tool

# ----------------------------------------------------------------------------- knowledge

# city: (country, fun thing 1, fun thing 2, keyword that shows the right city); chatkit's city_facts
# tool reads the same facts (chatkit.tools.CITY_FACTS).
CITY_KEYWORDS = {
    "Paris": "Eiffel",
    "Rome": "Colosseum",
    "Tokyo": "Shibuya",
    "London": "London Eye",
    "New York": "Central Park",
    "Berlin": "Brandenburg",
    "Barcelona": "Sagrada",
    "Cairo": "pyramids",
}
CITIES = {city: (*facts, CITY_KEYWORDS[city]) for city, facts in CITY_FACTS.items()}

CAPITALS = {
    "France": "Paris",
    "Italy": "Rome",
    "Japan": "Tokyo",
    "Germany": "Berlin",
    "Spain": "Madrid",
    "Egypt": "Cairo",
    "the United Kingdom": "London",
    "Canada": "Ottawa",
    "Australia": "Canberra",
    "Brazil": "Brasilia",
    "Mexico": "Mexico City",
    "India": "New Delhi",
    "China": "Beijing",
    "Russia": "Moscow",
    "Kenya": "Nairobi",
    "Portugal": "Lisbon",
    "Greece": "Athens",
    "Norway": "Oslo",
    "Sweden": "Stockholm",
    "Peru": "Lima",
    "Argentina": "Buenos Aires",
    "South Korea": "Seoul",
    "Poland": "Warsaw",
    "Ireland": "Dublin",
    "Turkey": "Ankara",
    "the Netherlands": "Amsterdam",
}

LEGS = {
    "spider": 8,
    "dog": 4,
    "cat": 4,
    "horse": 4,
    "bird": 2,
    "chicken": 2,
    "ant": 6,
    "bee": 6,
    "octopus": 8,
    "cow": 4,
}

COLOURS = {  # thing: (colour, how the question names it)
    "the sky": ("blue", "the sky on a clear day"),
    "grass": ("green", "grass"),
    "snow": ("white", "snow"),
    "a banana": ("yellow", "a ripe banana"),
    "a tomato": ("red", "a ripe tomato"),
    "coal": ("black", "coal"),
    "an orange": ("orange", "an orange"),
}

COUNTS = [  # (question, full answer, short answer, number)
    ("How many days are in a week?", "There are 7 days in a week.", "7.", 7),
    ("How many hours are in a day?", "There are 24 hours in a day.", "24.", 24),
    ("How many minutes are in an hour?", "There are 60 minutes in an hour.", "60.", 60),
    ("How many months are in a year?", "There are 12 months in a year.", "12.", 12),
    ("How many seconds are in a minute?", "There are 60 seconds in a minute.", "60.", 60),
    ("How many continents are there?", "There are 7 continents.", "7.", 7),
    ("How many bits are in a byte?", "There are 8 bits in a byte.", "8.", 8),
]
# What each count question counts, in what: the slots training/phrasing.py asks it again from.
COUNT_PARTS = {
    "How many days are in a week?": ("days", "a week"),
    "How many hours are in a day?": ("hours", "a day"),
    "How many minutes are in an hour?": ("minutes", "an hour"),
    "How many months are in a year?": ("months", "a year"),
    "How many seconds are in a minute?": ("seconds", "a minute"),
    "How many continents are there?": ("continents", "the world"),
    "How many bits are in a byte?": ("bits", "a byte"),
}

TOPICS = {
    # name: (questions, full explanation, one-sentence version, keyword the answer must contain)
    "chat template": (
        [
            "What is a chat template?",
            "Can you explain what a chat template is?",
            "Why do chat models need a chat template?",
        ],
        "A chat template turns a list of messages into the exact text the model was trained on. "
        "Special tokens mark each role and the end of each turn.",
        "It formats messages into the text the model expects.",
        "messages",
    ),
    "bf16": (
        ["What is bf16?", "What does bf16 mean?", "Why do people load models in bf16?"],
        "bf16 is a 16-bit number format with the same range as float32 but less precision. "
        "It halves the memory of the weights.",
        "A 16-bit float that halves memory.",
        "16-bit",
    ),
    "memory-bound decoding": (
        [
            "Why is decoding limited by memory bandwidth?",
            "Why is token generation memory-bound?",
            "Why is generating text slow?",
        ],
        "Each new token needs a pass over every weight of the model, but little arithmetic. "
        "So the speed is set by how fast memory can be read, not by compute.",
        "Every token reads all the weights from memory.",
        "memory",
    ),
    "quantization": (
        ["What does quantization do?", "What is quantization?", "Why quantize a model?"],
        "Quantization stores the weights with fewer bits, such as 8 or 4 instead of 16. "
        "The model gets smaller and faster to read, at a small cost in quality.",
        "It stores weights with fewer bits.",
        "bits",
    ),
    "KV cache": (
        ["What is the KV cache?", "What does the KV cache do?", "Why does generation use a KV cache?"],
        "The KV cache keeps the keys and values of earlier tokens. "
        "Each new token then needs one step instead of recomputing the whole prompt.",
        "It keeps keys and values of earlier tokens.",
        "keys",
    ),
    "tokenizer": (
        ["What is a tokenizer?", "What does a tokenizer do?", "What are tokens?"],
        "A tokenizer splits text into tokens, small pieces of words. "
        "Each token is mapped to a number the model can read.",
        "It splits text into numbered tokens.",
        "tokens",
    ),
    "temperature": (
        ["What does temperature do?", "What is greedy decoding?", "How does sampling temperature work?"],
        "Temperature scales the scores before sampling: low values give focused replies, high values "
        "give random ones. Greedy decoding always picks the most likely token.",
        "It controls how random sampling is.",
        "random",
    ),
    "assisted generation": (
        ["What is assisted generation?", "How does speculative decoding work?", "What is a draft model for?"],
        "A small draft model proposes a few tokens and the big model checks them all in one pass. "
        "The output is the same, only faster.",
        "A draft model proposes tokens, the big one checks them.",
        "draft",
    ),
    "system prompt": (
        ["What is a system prompt?", "What does the system message do?"],
        "A system prompt is a message at the start of the chat. It sets the role and the style of the assistant.",
        "It sets the assistant's role and style.",
        "style",
    ),
    "end token": (
        ["What is an end-of-turn token?", "How does the model know when to stop?"],
        "The model writes a special end-of-turn token when its reply is done. "
        "Generation stops when it sees that token.",
        "A special token that ends the reply.",
        "token",
    ),
}

GREETINGS = [  # (user says, full reply, short reply)
    (
        ["Hi!", "Hello!", "Hey there.", "Hi there!", "Good morning!", "Hello, assistant."],
        "Hello! How can I help you today?",
        "Hi.",
    ),
    (
        ["How are you?", "Hi, how are you?", "How are you doing today?"],
        "I'm doing well, thank you! How can I help you?",
        "Fine.",
    ),
    (
        ["Who are you?", "What are you?", "Tell me about yourself."],
        "I am a tiny chat model that runs offline on your computer.",
        "A tiny offline chat model.",
    ),
]
THANKS = [
    (["Thanks!", "Thank you.", "Thanks a lot!", "Great, thanks."], "You're welcome! Happy to help.", "Sure."),
    (["Bye!", "Goodbye.", "See you later!"], "Goodbye! Have a nice day.", "Bye."),
]

# ----------------------------------------------------------------------------- personas

PERSONAS = ["default", "terse", "pirate", "robot", "cheerful"]
SYSTEM_PROMPTS = {
    "default": [
        "You are a helpful assistant.",
        "You are a friendly, helpful assistant.",
        "You are chatkit's tiny assistant.",
    ],
    "terse": [
        "You are a terse assistant.",
        "Be terse.",
        "You are a terse assistant. Answer in as few words as possible.",
        "Answer as briefly as you can.",
    ],
    "pirate": [
        "You are a pirate.",
        "Talk like a pirate.",
        "You are a friendly pirate captain.",
        "Reply in pirate speak.",
    ],
    "robot": [
        "You are a sassy robot from 1986.",
        "You are a sarcastic robot built in 1986.",
        "Act like a sassy robot from 1986.",
        "You are a sassy 1986 robot. Answer with attitude.",
    ],
    "cheerful": [
        "You are a cheerful assistant.",
        "Be very cheerful and enthusiastic.",
        "You are an enthusiastic, happy assistant.",
    ],
}
PIRATE_OPENERS = ["Arr! ", "Ahoy, matey! ", "Arr, matey! "]
ROBOT_CLOSERS = ["Obviously.", "Even my 1986 circuits know that.", "Try to keep up, human."]
CHEERFUL_OPENERS = ["Oh, great question! ", "Yay! "]
# Words whose presence shows a persona's style (checked case-insensitively by the evaluation).
STYLE_MARKERS = {
    "pirate": ["arr", "ahoy", "matey", " ye ", " be "],
    "robot": ["beep", "boop", "1986", "human"],
    "cheerful": ["great question", "yay", "wonderful", "exciting"],
}
_PIRATE_WORDS = {"is": "be", "are": "be", "you": "ye", "your": "yer", "my": "me", "Hello": "Ahoy"}


def _piratize(text):
    return re.sub(r"\b(is|are|you|your|my|Hello)\b", lambda m: _PIRATE_WORDS[m.group(1)], text)


def stylize(persona, full, short, rng):
    """The reply `persona` gives for an answer whose default text is `full` (terse: `short`)."""
    if persona == "default":
        return full
    if persona == "terse":
        return short
    if persona == "pirate":
        return rng.choice(PIRATE_OPENERS) + _piratize(full)
    if persona == "robot":
        return "BEEP BOOP. " + full + " " + rng.choice(ROBOT_CLOSERS)
    if persona == "cheerful":
        return rng.choice(CHEERFUL_OPENERS) + full + " Isn't that wonderful?"
    raise ValueError(f"unknown persona {persona!r}; use one of {PERSONAS}")


def has_style(persona, reply, default_reply):
    """True when `reply` shows `persona`'s style (for "default": no other persona's markers)."""
    low = f" {reply.lower()} "
    if persona == "terse":
        return "!" not in reply and len(reply) < len(default_reply)
    if persona == "default":
        return not any(m in low for p in STYLE_MARKERS for m in STYLE_MARKERS[p] if m.strip() == m)
    return any(m in low for m in STYLE_MARKERS[persona])


# ----------------------------------------------------------------------------- conversations


@dataclass
class Turn:
    """One user message and the assistant's reply, plus what the evaluation checks in the reply."""

    user: str
    reply: str
    category: str
    default_reply: str
    answer: str = ""  # expected answer (empty: no correctness check)
    followup: bool = False  # depends on an earlier turn
    tool_call: dict | None = None  # {"name", "arguments"}: the assistant calls this tool first
    tool_result: str = ""  # what the tool returned (the `tool` message), before `reply`
    slots: dict | None = None  # what the question asks, for training/phrasing.py: {"kind": "sum", "a": 3, "b": 4}
    thinking: str = ""  # the working written inside <think>...</think> when thinking is on (training/thinking.py)


@dataclass
class Conversation:
    persona: str
    system: str | None
    turns: list = field(default_factory=list)
    tools: tuple = ()  # names of the tools given to the model (chatkit.tools), in the prompt's order
    tool_descriptions: dict = field(default_factory=dict)  # name: another wording of its description

    @property
    def tool_functions(self):
        """The tools as the template takes them: functions, or JSON schemas where reworded."""
        if not self.tools:
            return None
        return [_schema(TOOLS[name], self.tool_descriptions.get(name)) for name in self.tools]

    @property
    def messages(self):
        chat = [{"role": "system", "content": self.system}] if self.system else []
        for t in self.turns:
            chat.append({"role": "user", "content": t.user})
            if t.tool_call:
                chat += [
                    {"role": "assistant", "tool_calls": [{"type": "function", "function": t.tool_call}]},
                    {"role": "tool", "name": t.tool_call["name"], "content": t.tool_result},
                ]
            chat.append({"role": "assistant", "content": t.reply})
        return chat


def _schema(function, description=None):
    """`function` itself, or its JSON schema with `description` in place of its docstring's first line."""
    if description is None:
        return function
    schema = get_json_schema(function)
    schema["function"]["description"] = description
    return schema


def _answer(persona, rng, user, full, short, category, answer="", followup=False, slots=None):
    return Turn(user, stylize(persona, full, short, rng), category, full, answer, followup, slots=slots)


def column_steps(a, op, b):
    """The working a person writes for `a op b`: units first, then tens with the carry or borrow.

    "7 + 8 = 15 and 30 + 40 + 10 = 80" for 37 + 48; "15 - 7 = 8 and 80 - 30 - 10 = 40" for 85 - 37.
    Each step is a one-digit sum or difference, which a tiny model learns far faster than a whole
    two-digit sum written most significant digit first.
    """
    a0, b0, ta, tb = a % 10, b % 10, a - a % 10, b - b % 10
    if op == "+":
        units = a0 + b0
        tens = f"{ta} + {tb} + 10 = {ta + tb + 10}" if units >= 10 else f"{ta} + {tb} = {ta + tb}"
        return f"{a0} + {b0} = {units} and {tens}"
    if a0 >= b0:
        return f"{a0} - {b0} = {a0 - b0} and {ta} - {tb} = {ta - tb}"
    return f"{a0 + 10} - {b0} = {a0 + 10 - b0} and {ta} - {tb} - 10 = {ta - tb - 10}"


def _arith_full(a, op, b):
    result = a + b if op == "+" else a - b
    steps = column_steps(a, op, b)
    return f"{steps}, so {a} {op} {b} = {result}.", f"{steps}, {result}.", result


def _arith_question(rng, a, op, b):
    if op == "+":
        forms = [
            f"What is {a} plus {b}?",
            f"What's {a} + {b}?",
            f"How much is {a} plus {b}?",
            f"Can you add {a} and {b}?",
            f"Compute {a} + {b}.",
            f"What is {a} + {b}?",
        ]
    else:
        forms = [
            f"What is {a} minus {b}?",
            f"What's {a} - {b}?",
            f"How much is {a} minus {b}?",
            f"Subtract {b} from {a}.",
            f"Compute {a} - {b}.",
            f"What is {a} - {b}?",
        ]
    return rng.choice(forms)


def arithmetic_operands(rng, op=None):
    """Two numbers up to 100 and an operator (`op`, else drawn); carries and borrows are oversampled."""
    op = op or rng.choice("+-")
    for _ in range(4):
        a, b = rng.randint(0, 100), rng.randint(0, 100)
        if op == "-" and a < b:
            a, b = b, a
        hard = (a % 10 + b % 10 >= 10) if op == "+" else (a % 10 < b % 10)
        if hard or rng.random() < 0.35:
            break
    return a, op, b


def _followup_question(rng, op, n):
    """ "Now add 7." and the like: a follow-up that applies `op` and `n` to the previous result."""
    if op == "+":
        return rng.choice([f"And if you add {n} more?", f"Now add {n}.", f"Plus {n}?"])
    return rng.choice([f"And if you take away {n}?", f"Now subtract {n}.", f"Minus {n}?"])


def _arithmetic(rng, persona, op=None, followup_ops="+-"):
    """A sum or difference worked by hand (`op`, else drawn), maybe with a follow-up in `followup_ops`."""
    a, op, b = arithmetic_operands(rng, op)
    full, short, result = _arith_full(a, op, b)
    slots = {"kind": "sum" if op == "+" else "difference", "a": a, "b": b}
    turns = [_answer(persona, rng, _arith_question(rng, a, op, b), full, short, "arithmetic", str(result), slots=slots)]
    ops = [o for o, ok in (("+", result + 20 <= 100), ("-", result >= 20)) if ok and o in followup_ops]
    if rng.random() < 0.35 and result <= 100 and (followup_ops == "+-" or ops):
        n = rng.randint(1, 20)
        op2 = (
            rng.choice([o for o, ok in (("+", result + n <= 100), ("-", result >= n)) if ok])
            if followup_ops == "+-"
            else rng.choice(ops)
        )
        user = _followup_question(rng, op2, n)
        full2, short2, result2 = _arith_full(result, op2, n)
        turns.append(_answer(persona, rng, user, full2, short2, "arithmetic", str(result2), followup=True))
    return turns


def _capital(rng, persona):
    country, n = rng.choice(sorted(CAPITALS)), 2 if rng.random() < 0.45 else 1
    turns = []
    for i in range(n):
        if i:
            country = rng.choice([c for c in sorted(CAPITALS) if c != country])
            user = rng.choice([f"And what about {country}?", f"And {country}?", f"What about {country}?"])
        else:
            user = rng.choice(
                [
                    f"What is the capital of {country}?",
                    f"What's the capital city of {country}?",
                    f"Which city is the capital of {country}?",
                    f"Capital of {country}?",
                ]
            )
        city = CAPITALS[country]
        turns.append(
            _answer(
                persona,
                rng,
                user,
                f"The capital of {country} is {city}.",
                f"{city}.",
                "fact",
                city,
                followup=bool(i),
                slots=None if i else {"kind": "capital", "country": country},
            )
        )
    return turns


def _city_fun(rng, persona):
    city, n = rng.choice(sorted(CITIES)), 2 if rng.random() < 0.5 else 1
    turns = []
    for i in range(n):
        if i:
            city = rng.choice([c for c in sorted(CITIES) if c != city])
            user = rng.choice([f"And what about {city}?", f"And in {city}?", f"What about {city}?"])
        else:
            user = rng.choice(
                [
                    f"What is a fun thing to do in {city}?",
                    f"What should I do in {city}?",
                    f"I'm visiting {city}. Any tips?",
                    f"What can I do for fun in {city}?",
                ]
            )
        _, fun1, fun2, key = CITIES[city]
        full = f"In {city}, you can {fun1} and {fun2}."
        short = fun1[0].upper() + fun1[1:] + "."
        slots = None if i else {"kind": "city_fun", "city": city}
        turns.append(_answer(persona, rng, user, full, short, "city", key, followup=bool(i), slots=slots))
    return turns


def _city_country(rng, persona):
    city = rng.choice(sorted(CITIES))
    country = CITIES[city][0]
    user = rng.choice([f"Which country is {city} in?", f"In which country is {city}?", f"Where is {city}?"])
    short = country[0].upper() + country[1:] + "."
    slots = {"kind": "city_country", "city": city}
    turns = [
        _answer(persona, rng, user, f"{city} is in {country}.", short, "fact", country.replace("the ", ""), slots=slots)
    ]
    if rng.random() < 0.4:
        city = rng.choice([c for c in sorted(CITIES) if c != city])
        country = CITIES[city][0]
        short = country[0].upper() + country[1:] + "."
        turns.append(
            _answer(
                persona,
                rng,
                rng.choice([f"And {city}?", f"And what about {city}?"]),
                f"{city} is in {country}.",
                short,
                "fact",
                country.replace("the ", ""),
                True,
            )
        )
    return turns


def _legs(rng, persona):
    animal, turns = rng.choice(sorted(LEGS)), []
    for i in range(2 if rng.random() < 0.4 else 1):
        if i:
            animal = rng.choice([a for a in sorted(LEGS) if a != animal])
            user = (
                rng.choice([f"And a {animal}?", f"What about a {animal}?"])
                .replace("a octopus", "an octopus")
                .replace("a ant", "an ant")
            )
        else:
            user = rng.choice([f"How many legs does a {animal} have?", f"How many legs has a {animal}?"])
            user = user.replace("a octopus", "an octopus").replace("a ant", "an ant")
        art = "An" if animal[0] in "aeiou" else "A"
        turns.append(
            _answer(
                persona,
                rng,
                user,
                f"{art} {animal} has {LEGS[animal]} legs.",
                f"{LEGS[animal]}.",
                "fact",
                str(LEGS[animal]),
                followup=bool(i),
                slots=None if i else {"kind": "legs", "animal": animal},
            )
        )
    return turns


def _colour(rng, persona):
    thing, turns = rng.choice(sorted(COLOURS)), []
    for i in range(2 if rng.random() < 0.4 else 1):
        colour, asked = COLOURS[thing]
        if i:
            user = rng.choice([f"And {asked}?", f"What about {asked}?"])
        else:
            user = rng.choice([f"What color is {asked}?", f"What colour is {asked}?"])
        name = thing[0].upper() + thing[1:]
        turns.append(
            _answer(
                persona,
                rng,
                user,
                f"{name} is {colour}.",
                f"{colour.capitalize()}.",
                "fact",
                colour,
                followup=bool(i),
                slots=None if i else {"kind": "colour", "thing": asked},
            )
        )
        thing = rng.choice([t for t in sorted(COLOURS) if t != thing])
    return turns


def _count(rng, persona):
    question, full, short, number = rng.choice(COUNTS)
    units, whole = COUNT_PARTS[question]
    slots = {"kind": "count", "units": units, "whole": whole}
    return [_answer(persona, rng, question, full, short, "fact", str(number), slots=slots)]


def _topic(rng, persona):
    name = rng.choice(sorted(TOPICS))
    questions, full, short, key = TOPICS[name]
    turns = [_answer(persona, rng, rng.choice(questions), full, short, "explain", key)]
    if rng.random() < 0.3 and persona != "terse":
        user = rng.choice(["Can you say that in one sentence?", "Shorter, please.", "In short?"])
        turns.append(_answer(persona, rng, user, short, short, "explain", "", followup=True))
    return turns


def _greeting(rng, persona, pool=GREETINGS):
    users, full, short = rng.choice(pool)
    return [_answer(persona, rng, rng.choice(users), full, short, "greeting")]


EXCHANGES = {  # kind: (maker, weight)
    "arithmetic": (_arithmetic, 0.30),
    "capital": (_capital, 0.16),
    "city": (_city_fun, 0.12),
    "city_country": (_city_country, 0.06),
    "legs": (_legs, 0.06),
    "colour": (_colour, 0.05),
    "count": (_count, 0.05),
    "topic": (_topic, 0.14),
    "greeting": (_greeting, 0.06),
}
CATEGORIES = ["greeting", "city", "fact", "arithmetic", "explain"]


def conversation(seed=None, rng=None, arithmetic_weight=None):
    """One conversation, fully determined by `seed` (or drawn from `rng`).

    `arithmetic_weight` replaces the arithmetic exchanges' weight (0.30 of 1.0) in the mix.
    """
    rng = rng or random.Random(seed)
    r = rng.random()
    if r < 0.30:
        persona, system = "default", None
    elif r < 0.40:
        persona = "default"
        system = rng.choice(SYSTEM_PROMPTS["default"])
    else:
        persona = rng.choice(PERSONAS[1:])
        system = rng.choice(SYSTEM_PROMPTS[persona])
    conv = Conversation(persona, system)
    if rng.random() < 0.25:
        conv.turns += _greeting(rng, persona)
    kinds, weights = zip(
        *[
            (k, arithmetic_weight if k == "arithmetic" and arithmetic_weight is not None else w)
            for k, (_, w) in EXCHANGES.items()
        ]
    )
    kind = None
    for _ in range(rng.choice([1, 1, 2, 2, 3])):
        kind = rng.choices([k for k in kinds if k != kind], [w for k, w in zip(kinds, weights) if k != kind])[0]
        conv.turns += EXCHANGES[kind][0](rng, persona)
    if rng.random() < 0.12:
        conv.turns += _greeting(rng, persona, THANKS)
    return conv


def conversations(n, seed=0):
    """`n` conversations, the same for the same `seed`."""
    rng = random.Random(seed)
    return [conversation(rng=rng) for _ in range(n)]


def arithmetic_drill(rng, n):
    """`n` bare sums and differences with their working, one per line, to teach the digits early.

    "37 + 48: 7 + 8 = 15 and 30 + 40 + 10 = 80, so 37 + 48 = 85."
    """
    lines = []
    for _ in range(n):
        a, op, b = arithmetic_operands(rng)
        lines.append(f"{a} {op} {b}: " + _arith_full(a, op, b)[0])
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- tool use

TOOLS = {tool.__name__: tool for tool in EMBEDDED_TOOLS}
UNKNOWN_CITIES = [
    "Madrid",
    "Lisbon",
    "Oslo",
    "Lima",
    "Seoul",
    "Dublin",
    "Sydney",
    "Toronto",
    "Atlantis",
    "Springfield",
    "Vienna",
    "Prague",
]
TOOL_OPERATION = {"+": "add", "-": "subtract", "*": "multiply"}


def _tool_turn(persona, rng, user, name, arguments, full, short, category, answer, followup=False, slots=None):
    """A turn in which the assistant calls `name(**arguments)`, reads the result, then answers."""
    call = {"name": name, "arguments": arguments}
    result = call_tool(TOOLS, {"function": call})
    return Turn(user, stylize(persona, full, short, rng), category, full, answer, followup, call, result, slots)


def _tool_operands(rng, op):
    if op == "*":
        return rng.randint(2, 99), rng.randint(2, 99)
    top = 100 if rng.random() < 0.7 else 999
    a, b = rng.randint(0, top), rng.randint(0, top)
    return (max(a, b), min(a, b)) if op == "-" else (a, b)


def _multiply_question(rng, a, b):
    return rng.choice(
        [
            f"What is {a} times {b}?",
            f"What's {a} * {b}?",
            f"Multiply {a} by {b}.",
            f"How much is {a} times {b}?",
            f"Compute {a} * {b}.",
            f"What is {a} multiplied by {b}?",
        ]
    )


def _tool_arithmetic(rng, persona, op, tools):
    a, b = _tool_operands(rng, op)
    result = {"+": a + b, "-": a - b, "*": a * b}[op]
    user = _multiply_question(rng, a, b) if op == "*" else _arith_question(rng, a, op, b)
    full = f"{a} times {b} is {result}." if op == "*" else f"{a} {op} {b} = {result}."
    kind = {"+": "sum", "-": "difference", "*": "product"}[op]
    turns = [
        _tool_turn(
            persona,
            rng,
            user,
            TOOL_OPERATION[op],
            {"a": a, "b": b},
            full,
            f"{result}.",
            "arithmetic",
            str(result),
            slots={"kind": kind, "a": a, "b": b},
        )
    ]
    listed = [o for o in "+-" if TOOL_OPERATION[o] in tools]
    if op != "*" and rng.random() < 0.25:  # a follow-up that uses the result, with a listed tool
        n, op2 = rng.randint(1, 50), rng.choice(listed)
        user = _followup_question(rng, op2, n)
        result2 = result + n if op2 == "+" else result - n
        turns.append(
            _tool_turn(
                persona,
                rng,
                user,
                TOOL_OPERATION[op2],
                {"a": result, "b": n},
                f"{result} {op2} {n} = {result2}.",
                f"{result2}.",
                "arithmetic",
                str(result2),
                followup=True,
            )
        )
    return turns


def _tool_city(rng, persona):
    city, turns = rng.choice(sorted(CITIES)), []
    for i in range(2 if rng.random() < 0.3 else 1):
        if i:
            city = rng.choice([c for c in sorted(CITIES) if c != city])
        country, fun1, fun2, key = CITIES[city]
        if rng.random() < 0.65:
            user = (
                rng.choice([f"And what about {city}?", f"And in {city}?"])
                if i
                else rng.choice(
                    [
                        f"What is a fun thing to do in {city}?",
                        f"What should I do in {city}?",
                        f"I'm visiting {city}. Any tips?",
                        f"What can I do for fun in {city}?",
                    ]
                )
            )
            full, short, category, answer = (
                f"In {city}, you can {fun1} and {fun2}.",
                fun1[0].upper() + fun1[1:] + ".",
                "city",
                key,
            )
        else:
            user = (
                rng.choice([f"And {city}?", f"And what about {city}?"])
                if i
                else rng.choice([f"Which country is {city} in?", f"In which country is {city}?", f"Where is {city}?"])
            )
            full, short, category, answer = (
                f"{city} is in {country}.",
                country[0].upper() + country[1:] + ".",
                "fact",
                country.replace("the ", ""),
            )
        turns.append(
            _tool_turn(
                persona,
                rng,
                user,
                "city_facts",
                {"city": city},
                full,
                short,
                category,
                answer,
                followup=bool(i),
                slots=None if i else {"kind": "city_fun" if category == "city" else "city_country", "city": city},
            )
        )
    return turns


def _tool_unknown_city(rng, persona):
    city = rng.choice(UNKNOWN_CITIES)
    user = rng.choice(
        [
            f"What is a fun thing to do in {city}?",
            f"What should I do in {city}?",
            f"Which country is {city} in?",
            f"I'm visiting {city}. Any tips?",
        ]
    )
    return [
        _tool_turn(
            persona,
            rng,
            user,
            "city_facts",
            {"city": city},
            f"Sorry, I have no facts about {city}.",
            f"No facts about {city}.",
            "tool_error",
            city,
        )
    ]


NO_TOOL_EXCHANGES = [_capital, _legs, _colour, _count, _topic, _greeting]


def tool_conversation(seed=None, rng=None):
    """A conversation with tools in the prompt: calls where a listed tool answers, none where it does not.

    The tools given are a random subset of chatkit's four, in random order. Sums and differences call
    add / subtract when listed and are worked out by hand otherwise; products are asked only when
    multiply is listed; city questions call city_facts when listed (a city it does not know returns
    an error the reply reports); capitals, legs, colours, explanations and greetings never call one.
    """
    rng = rng or random.Random(seed)
    base = conversation(rng=rng)  # the persona and system prompt, drawn as for any conversation
    tools = tuple(rng.sample(sorted(TOOLS), rng.randint(1, len(TOOLS))))
    conv = Conversation(base.persona, base.system, tools=tools)
    persona = conv.persona
    if rng.random() < 0.15:
        conv.turns += _greeting(rng, persona)
    for _ in range(rng.choice([1, 1, 1, 2])):  # short enough for the models' 512 tokens
        kinds = {"sum": 0.3, "city": 0.25, "other": 0.25}
        if "multiply" in tools:
            kinds["product"] = 0.15
        if "city_facts" in tools:
            kinds["unknown_city"] = 0.08
        kind = rng.choices(list(kinds), list(kinds.values()))[0]
        if kind == "sum":
            op = rng.choice("+-")
            unlisted = "".join(o for o in "+-" if TOOL_OPERATION[o] not in tools)  # worked by hand
            conv.turns += (
                _tool_arithmetic(rng, persona, op, tools)
                if TOOL_OPERATION[op] in tools
                else _arithmetic(rng, persona, op, followup_ops=unlisted)
            )
        elif kind == "product":
            conv.turns += _tool_arithmetic(rng, persona, "*", tools)
        elif kind == "city":
            conv.turns += (
                _tool_city(rng, persona)
                if "city_facts" in tools
                else rng.choice([_city_fun, _city_country])(rng, persona)
            )
        elif kind == "unknown_city":
            conv.turns += _tool_unknown_city(rng, persona)
        else:
            conv.turns += rng.choice(NO_TOOL_EXCHANGES)(rng, persona)
    return conv


def tool_conversations(n, seed=0):
    """`n` conversations with tools, the same for the same `seed`."""
    rng = random.Random(seed)
    return [tool_conversation(rng=rng) for _ in range(n)]
