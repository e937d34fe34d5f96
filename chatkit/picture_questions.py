"""What is asked about a picture, and what answer is right: the questions of the vision-language model.

`ask` puts a question of a type that fits the scene (`QUESTION_TYPES`) in one of several phrasings, with
a short reply and the key an evaluator checks (`is_right`). `image_conversation` makes training chats in
transformers' multimodal format (images, follow-up turns, two pictures compared, a thank-you turn);
`held_out_image_questions` makes the evaluation questions. Pictures split in two by a hash of their
pixels: training draws only from one part and evaluation only from the other, so no evaluation picture
is ever a training picture (a digit drawn at the same place and size is the same picture whatever the seed).

Example:
    >>> import random
    >>> from chatkit.pictures import random_scene
    >>> scene = random_scene(random.Random(0), "one")
    >>> qtype, question, reply, key = ask(scene, random.Random(1), "colour")
    >>> reply == f"The {scene.things[0].shape} is {key}." and is_right(qtype, key, reply)
    True
"""

import random
import re

from .pictures import COLOURS, KIND_QUESTIONS, QUESTION_KINDS, QUESTION_TYPES, SHAPES, SIZE, SIZES, draw, random_scene


def plural(shape, n=2):
    return shape if n == 1 else shape + "s"


def with_article(words):
    """`words` after "a", or "an" before a vowel.

    >>> with_article("red circle"), with_article("orange star")
    ('a red circle', 'an orange star')
    """
    return ("an " if words[0] in "aeiou" else "a ") + words


def describe(things):
    """ "A red circle and an orange star.": every thing, left to right."""
    parts = [with_article(f"{t.colour} {t.shape}") for t in sorted(things, key=lambda t: t.x)]
    text = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return text[0].upper() + text[1:] + "."


def _colour(scene, rng):
    things = scene.things
    if scene.kind == "count":
        t, n = things[0], len(things)
        if n == 1:
            return _colour_of(t, rng)
        s = plural(t.shape)
        question = rng.choice(
            [
                f"What colour are the {s}?",
                f"Which colour are the {s}?",
                f"what color are the {s}",
                f"The {s} are what colour?",
                f"What color do the {s} have?",
            ]
        )
        return question, f"The {s} are {t.colour}.", t.colour
    if scene.kind == "two" and rng.random() < 0.4:
        t = rng.choice(things)
        side = _side(scene, t)
        question = rng.choice(
            [
                f"What colour is the shape {side[1]}?",
                f"Which colour is the thing {side[1]}?",
                f"what color is the shape {side[1]}",
                f"The shape {side[1]} is what colour?",
            ]
        )
        return question, f"The {t.shape} {side[1]} is {t.colour}.", t.colour
    return _colour_of(rng.choice(things), rng)


def _colour_of(t, rng):
    question = rng.choice(
        [
            f"What colour is the {t.shape}?",
            f"Which colour is the {t.shape}?",
            f"what color is the {t.shape}",
            f"The {t.shape} is what colour?",
            f"What color is the {t.shape} in the picture?",
            f"Tell me the colour of the {t.shape}.",
        ]
    )
    return question, f"The {t.shape} is {t.colour}.", t.colour


def _shape(scene, rng):
    t, n = scene.things[0], len(scene.things)
    if n == 1:
        question = rng.choice(
            [
                "What shape is this?",
                "Which shape do you see?",
                "what shape is in the picture",
                "Name the shape in the picture.",
                f"What shape is the {t.colour} thing?",
                "What is the shape in this image?",
            ]
        )
        return question, f"It is a {t.shape}.", t.shape
    question = rng.choice(
        [
            "What shape are they?",
            "Which shape do you see?",
            "what shapes are in the picture",
            "Name the shape of the things in the picture.",
            f"What shape are the {t.colour} things?",
        ]
    )
    return question, f"They are {plural(t.shape)}.", t.shape


def _count_question(scene, rng):
    n = len(scene.things)
    if scene.kind == "mixed":
        what = rng.choice(["shapes", "things"])
        question = rng.choice(
            [
                f"How many {what} are there?",
                f"How many {what} are in the picture?",
                f"Count the {what}.",
                f"how many {what} do you see",
                f"What is the number of {what} in this image?",
            ]
        )
        return question, f"There are {n} {what}.", str(n)
    s = plural(scene.things[0].shape)
    question = rng.choice(
        [
            f"How many {s} are there?",
            f"How many {s} can you see?",
            f"Count the {s}.",
            f"how many {s} are in the picture",
            f"What is the number of {s}?",
        ]
    )
    reply = f"There is 1 {scene.things[0].shape}." if n == 1 else f"There are {n} {s}."
    return question, reply, str(n)


SIDES = {"left": "on the left", "right": "on the right", "top": "at the top", "bottom": "at the bottom"}


def _side(scene, thing):
    """(side, "on the left") of a thing in a "two" scene."""
    if scene.layout == "left-right":
        side = "left" if thing.x < SIZE // 2 else "right"
    else:
        side = "top" if thing.y < SIZE // 2 else "bottom"
    return side, SIDES[side]


def _position(scene, rng, side=None):
    sides = ("left", "right") if scene.layout == "left-right" else ("top", "bottom")
    side = side or rng.choice(sides)
    t = next(t for t in scene.things if _side(scene, t)[0] == side)
    where = SIDES[side]
    question = rng.choice(
        [
            f"What is {where}?",
            f"What shape is {where}?",
            f"Which shape is {where} of the picture?",
            f"what's {where}",
            f"What do you see {where}?",
        ]
    )
    return question, f"{where[0].upper() + where[1:]} there is {with_article(f'{t.colour} {t.shape}')}.", t.shape


def _size(scene, rng):
    t = scene.things[0]
    word = SIZES[t.size]
    question = rng.choice(
        [
            f"Is the {t.shape} big or small?",
            f"Is the {t.shape} small or big?",
            f"How big is the {t.shape}?",
            f"is the {t.shape} big or small",
            f"What size is the {t.shape}?",
        ]
    )
    return question, f"The {t.shape} is {word}.", word


def _text_question(scene, rng):
    question = rng.choice(
        [
            "What number is written in the picture?",
            "Which digit do you see?",
            "what number is this",
            "Read the number in the picture.",
            "What does the picture say?",
        ]
    )
    return question, f"The number {scene.text} is written in the picture.", scene.text


def _bars_question(scene, rng):
    colour = max(scene.bars, key=lambda bar: bar[1])[0]
    question = rng.choice(
        [
            "Which bar is the tallest?",
            "Which colour is the tallest bar?",
            "which bar is highest",
            "What colour is the biggest bar?",
            "In the chart, which bar is tallest?",
        ]
    )
    return question, f"The {colour} bar is the tallest.", colour


def _describe(scene, rng):
    question = rng.choice(
        [
            "Describe the picture.",
            "What is in the picture?",
            "What do you see?",
            "describe this image",
            "Tell me what is in the picture.",
        ]
    )
    reply = describe(scene.things)
    return question, reply, reply


QUESTIONS = {
    "colour": _colour,
    "shape": _shape,
    "count": _count_question,
    "position": _position,
    "size": _size,
    "text": _text_question,
    "bars": _bars_question,
    "describe": _describe,
}


def ask(scene, rng, qtype=None):
    """(qtype, question, reply, key): a question that fits the scene (of `qtype`, or any that fits)."""
    qtype = qtype or rng.choice(KIND_QUESTIONS[scene.kind])
    if qtype not in KIND_QUESTIONS[scene.kind]:
        raise ValueError(f"a {qtype!r} question does not fit a {scene.kind!r} scene")
    return (qtype, *QUESTIONS[qtype](scene, rng))


# ----------------------------------------------------------------------------- checking

VOCABULARY = {
    "colour": tuple(COLOURS),
    "bars": tuple(COLOURS),
    "shape": SHAPES,
    "position": SHAPES,
    "size": tuple(SIZES.values()),
    "compare": ("first", "second"),
}


def _words(vocabulary, text):
    """The words of `vocabulary` in `text` (case-insensitive, a plural "s" allowed)."""
    return {w for w in vocabulary if re.search(rf"\b{w}s?\b", text, re.IGNORECASE)}


def is_right(qtype, key, reply):
    """Whether `reply` gives the answer `key` to a question of `qtype`, and no other answer beside it."""
    if qtype == "describe":
        pairs = re.findall(rf"\b({'|'.join(COLOURS)}) ({'|'.join(SHAPES)})\b", key.lower())
        present = all(re.search(rf"\b{c} {s}\b", reply, re.IGNORECASE) for c, s in pairs)
        return bool(pairs) and present and _words(SHAPES, reply) <= {s for _, s in pairs}
    if qtype in ("count", "text"):
        numbers = re.findall(r"\b\d+\b", reply)
        return bool(numbers) and {int(n) for n in numbers} == {int(key)}
    words = _words(VOCABULARY.get(qtype, (key,)), reply)
    return key.lower() in words and len(words) == 1


# ----------------------------------------------------------------------------- conversations


def _user(text, images=1):
    return {"role": "user", "content": [{"type": "image"}] * images + [{"type": "text", "text": text}]}


def _assistant(text):
    return {"role": "assistant", "content": text}


def _scene(rng, kind, held_out=False, together=()):
    """`random_scene`; for half the training pictures of several things, redrawn until it holds every shape
    in `together` (the shapes the model tells apart worst, side by side)."""
    scene = random_scene(rng, kind, held_out)
    if together and not held_out and kind in ("two", "mixed") and rng.random() < 0.5:
        while not set(together) <= {t.shape for t in scene.things}:
            scene = random_scene(rng, kind, held_out)
    return scene


def _any_question(rng, held_out=False, types=QUESTION_TYPES, together=()):
    """(scene, (qtype, question, reply, key)): the question type first, evenly from `types` (a type named twice
    comes twice as often), then a scene that fits it (`together`: see `_scene`)."""
    qtype = rng.choice(types)
    scene = _scene(rng, rng.choice(QUESTION_KINDS[qtype]), held_out, together)
    return scene, ask(scene, rng, qtype)


def _follow_up(rng, together=()):
    """A question about a picture and a follow-up about the same thing(s): (scene, [(user, reply, qtype, key)])."""
    kind = rng.choice(("one", "count", "two"))
    scene = _scene(rng, kind, together=together)
    it = "it"
    if kind == "two":
        sides = ("left", "right") if scene.layout == "left-right" else ("top", "bottom")
        side = rng.choice(sides)
        question, reply, key = _position(scene, rng, side)
        first = ("position", question, reply, key)
        t = next(t for t in scene.things if _side(scene, t)[0] == side)
        if rng.random() < 0.5:
            other = sides[1 - sides.index(side)]
            q2, r2, k2 = _position(scene, rng, other)
            q2 = rng.choice([f"And {SIDES[other]}?", f"And what is {SIDES[other]}?", f"what about {SIDES[other]}"])
            return scene, [first, ("position", q2, r2, k2)]
    elif kind == "count":
        first = ask(scene, rng, "count")
        t = scene.things[0]
        it = "they" if len(scene.things) > 1 else "it"
    else:
        first = ask(scene, rng, rng.choice(("shape", "colour")))
        t = scene.things[0]
        if first[0] == "colour" or rng.random() < 0.4:
            q2 = rng.choice(["And is it big or small?", "Is it big or small?", "and how big is it", "And its size?"])
            return scene, [first, ("size", q2, f"It is {SIZES[t.size]}.", SIZES[t.size])]
    verb = "are" if it == "they" else "is"
    q2 = rng.choice(
        [
            f"And what colour {verb} {it}?",
            f"What colour {verb} {it}?",
            f"and what color {verb} {it}",
            f"Which colour {verb} {it}?",
        ]
    )
    return scene, [first, ("colour", q2, f"{it.capitalize()} {verb} {t.colour}.", t.colour)]


def _compare(rng, held_out=False):
    """Two pictures and a question comparing them: (scenes, question, reply, key "first"/"second")."""
    if rng.random() < 0.5:
        shape = rng.choice(SHAPES)
        a, b = rng.sample(range(1, 6), 2)
        scenes = [random_scene(rng, "count", held_out, shape=shape, n=n) for n in (a, b)]
        s = plural(shape)
        more = rng.random() < 0.6
        word = "more" if more else "fewer"
        key = "first" if (a > b) == more else "second"
        question = rng.choice(
            [
                f"Which picture has {word} {s}?",
                f"Which image has {word} {s}?",
                f"In which picture are there {word} {s}?",
                f"which one has {word} {s}",
                f"Here are two pictures. Which one has {word} {s}?",
            ]
        )
        return scenes, question, f"The {key} picture has {word} {s}.", key
    shapes = rng.sample(SHAPES, 2)
    scenes = [random_scene(rng, "one", held_out, shape=shape) for shape in shapes]
    k = rng.randint(0, 1)
    shape, key = shapes[k], ("first", "second")[k]
    question = rng.choice(
        [
            f"Which picture shows a {shape}?",
            f"Which image has a {shape} in it?",
            f"In which picture is there a {shape}?",
            f"which one shows a {shape}",
            f"Here are two pictures. Which one has a {shape}?",
        ]
    )
    return scenes, question, f"The {key} picture shows a {shape}.", key


THANKS = ["Thanks!", "Thank you!", "thanks", "Great, thanks.", "Thank you very much!"]
WELCOME = ["You're welcome!", "You're welcome! Happy to help.", "Glad I could help!"]


def image_conversation(seed, compare=0.10, types=QUESTION_TYPES, together=()):
    """A training chat about pictures in transformers' multimodal format, deterministic by seed.

    Returns {"images": [PIL images, in order of appearance], "messages": [...], "checks": [(index of an
    assistant message, qtype, key), ...]}; two-picture comparisons have qtype "compare" (key "first" or
    "second"). By default about 70% one picture and one question (its type from `types`), 15% a follow-up
    question about the same picture, 10% two pictures compared (`compare`: their share, taken from the single
    questions), 5% a question then a thank-you. `together`: shapes that half the pictures of several things
    hold side by side (none by default)."""
    rng = random.Random(seed)
    roll = rng.random()
    single = 0.80 - compare
    if roll < single or roll >= 0.95:
        scene, (qtype, question, reply, key) = _any_question(rng, types=types, together=together)
        messages = [_user(question), _assistant(reply)]
        if roll >= 0.95:
            messages += [{"role": "user", "content": [{"type": "text", "text": rng.choice(THANKS)}]}]
            messages += [_assistant(rng.choice(WELCOME))]
        return {"images": [draw(scene)], "messages": messages, "checks": [(1, qtype, key)]}
    if roll < single + 0.15:
        scene, turns = _follow_up(rng, together)
        (q1type, q1, r1, k1), (q2type, q2, r2, k2) = turns
        messages = [
            _user(q1),
            _assistant(r1),
            {"role": "user", "content": [{"type": "text", "text": q2}]},
            _assistant(r2),
        ]
        return {"images": [draw(scene)], "messages": messages, "checks": [(1, q1type, k1), (3, q2type, k2)]}
    scenes, question, reply, key = _compare(rng)
    messages = [_user(question, images=2), _assistant(reply)]
    return {"images": [draw(s) for s in scenes], "messages": messages, "checks": [(1, "compare", key)]}


def held_out_image_questions(n, seed=100_000):
    """n evaluation questions, their types in turn through QUESTION_TYPES, on pictures training never draws.

    Each is {"qtype", "image", "chat": [one user message: an image block and a text block], "answer": key,
    "scene": what the picture shows (`pictures.Scene`)}."""
    questions = []
    for i in range(n):
        rng = random.Random(seed + i)
        qtype = QUESTION_TYPES[i % len(QUESTION_TYPES)]
        scene = random_scene(rng, rng.choice(QUESTION_KINDS[qtype]), held_out=True)
        _, question, _, key = ask(scene, rng, qtype)
        questions.append(
            {"qtype": qtype, "image": draw(scene), "chat": [_user(question)], "answer": key, "scene": scene}
        )
    return questions


def held_out_comparisons(n, seed=200_000):
    """n evaluation questions about two pictures at once ("Which picture has more stars?"), on pictures
    training never draws: {"qtype": "compare", "images": [two PIL images], "chat", "answer": "first"/"second"}."""
    questions = []
    for i in range(n):
        scenes, question, _, key = _compare(random.Random(seed + i), held_out=True)
        chat = [_user(question, images=2)]
        questions.append({"qtype": "compare", "images": [draw(s) for s in scenes], "chat": chat, "answer": key})
    return questions
