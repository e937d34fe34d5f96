"""chatkit.pictures and chatkit.picture_questions: the drawings, questions, answers and checks of the VLM."""

import random
import re
from collections import Counter

import pytest

from chatkit import picture_questions, pictures
from chatkit.pictures import COLOURS, KINDS, QUESTION_TYPES, SHAPES, SIZE, draw


def scenes(kind, n=40):
    return [pictures.random_scene(random.Random(seed), kind) for seed in range(n)]


def test_same_seed_same_pictures_and_messages():
    for kind in KINDS:
        a, b = (pictures.random_scene(random.Random(7), kind) for _ in range(2))
        assert a == b and pictures.draw(a).tobytes() == pictures.draw(b).tobytes()
    for seed in range(30):
        a, b = picture_questions.image_conversation(seed), picture_questions.image_conversation(seed)
        assert a["messages"] == b["messages"] and a["checks"] == b["checks"]
        assert [i.tobytes() for i in a["images"]] == [i.tobytes() for i in b["images"]]
    assert picture_questions.image_conversation(1)["messages"] != picture_questions.image_conversation(2)["messages"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_draws_a_picture(kind):
    for scene in scenes(kind, 10):
        image = pictures.draw(scene)
        assert image.mode == "RGB" and image.size == (SIZE, SIZE)
        assert image.getpixel((0, 0)) == (255, 255, 255)
        assert any(colour != (255, 255, 255) for _, colour in image.getcolors(SIZE * SIZE))


def test_one_thing_shows_its_colour():
    for scene in scenes("one"):
        (thing,) = scene.things
        colours = sorted(pictures.draw(scene).getcolors(SIZE * SIZE), reverse=True)
        assert [colour for _, colour in colours if colour != (255, 255, 255)][0] == COLOURS[thing.colour]
        assert 2 <= thing.x - thing.size and thing.x + thing.size <= SIZE - 3
        assert 2 <= thing.y - thing.size and thing.y + thing.size <= SIZE - 3


def boxes_apart(a, b):
    (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = a.box(), b.box()
    return ax1 < bx0 or bx1 < ax0 or ay1 < by0 or by1 < ay0


def test_count_scenes_do_not_overlap_and_count_right():
    seen = set()
    for seed, scene in enumerate(scenes("count", 60)):
        things = scene.things
        seen.add(len(things))
        assert 1 <= len(things) <= 5
        assert len({t.shape for t in things}) == 1 and len({t.colour for t in things}) == 1
        assert all(boxes_apart(a, b) for i, a in enumerate(things) for b in things[i + 1 :])
        qtype, _, reply, key = picture_questions.ask(scene, random.Random(seed), "count")
        assert key == str(len(things)) and picture_questions.is_right(qtype, key, reply)
    assert seen == {1, 2, 3, 4, 5}


def test_two_and_mixed_scenes():
    for scene in scenes("two"):
        a, b = scene.things
        assert a.shape != b.shape and a.colour != b.colour and boxes_apart(a, b)
        assert scene.layout in ("left-right", "top-bottom")
    for scene in scenes("mixed"):
        things = scene.things
        assert 2 <= len(things) <= 4
        assert len({t.shape for t in things}) == len(things) == len({t.colour for t in things})
        assert all(boxes_apart(a, b) for i, a in enumerate(things) for b in things[i + 1 :])


def test_position_answers_match_coordinates():
    layouts = set()
    for seed, scene in enumerate(scenes("two", 60)):
        layouts.add(scene.layout)
        qtype, question, reply, key = picture_questions.ask(scene, random.Random(seed), "position")
        (thing,) = [t for t in scene.things if t.shape == key]
        side = re.search(r"left|right|top|bottom", question).group()
        half = SIZE // 2
        inside = {
            "left": thing.x + thing.size < half,
            "right": thing.x - thing.size >= half,
            "top": thing.y + thing.size < half,
            "bottom": thing.y - thing.size >= half,
        }
        assert inside[side], (scene, question)
        assert reply.lower().startswith(("on the " + side, "at the " + side))
        assert f"{thing.colour} {thing.shape}" in reply
    assert layouts == {"left-right", "top-bottom"}


def test_text_and_bars():
    for seed, scene in enumerate(scenes("text")):
        assert scene.text in "0123456789" and len(scene.text) == 1
        assert picture_questions.ask(scene, random.Random(seed))[3] == scene.text
    for seed, scene in enumerate(scenes("bars")):
        heights = [h for _, h in scene.bars]
        assert len(scene.bars) == 3 and len({c for c, _ in scene.bars}) == 3
        assert all(abs(a - b) >= 10 for i, a in enumerate(heights) for b in heights[i + 1 :])
        tallest = max(scene.bars, key=lambda bar: bar[1])[0]
        assert picture_questions.ask(scene, random.Random(seed))[3] == tallest


def wrong(qtype, key, reply):
    """The reply with its answer swapped for another of the same kind."""
    if qtype in ("count", "text"):
        return re.sub(rf"\b{key}\b", str((int(key) + 1) % 10), reply)
    if qtype == "describe":
        first = re.search(rf"\b({'|'.join(COLOURS)}) ({'|'.join(SHAPES)})\b", reply)
        other = next(c for c in COLOURS if c != first.group(1))
        return reply.replace(first.group(0), f"{other} {first.group(2)}", 1)
    vocabulary = {"size": ("big", "small"), "shape": SHAPES, "position": SHAPES}.get(qtype, tuple(COLOURS))
    other = next(w for w in vocabulary if w != key)
    return re.sub(rf"\b{key}(?=s?\b)", other, reply)


def test_ask_covers_every_type_and_its_key_checks_its_reply():
    phrasings = {}
    for seed in range(400):
        rng = random.Random(seed)
        scene = pictures.random_scene(rng)
        qtype, question, reply, key = picture_questions.ask(scene, rng)
        assert qtype in pictures.KIND_QUESTIONS[scene.kind]
        phrasings.setdefault(qtype, set()).add(re.sub(r"\b(" + "|".join([*SHAPES, *COLOURS]) + r")s?\b", "_", question))
        assert key.lower() in reply.lower() and reply.endswith(".") and reply[0].isupper()
        assert not re.search(r"\ba [aeiou]", reply, re.IGNORECASE), reply  # "an orange star"
        assert picture_questions.is_right(qtype, key, reply), (qtype, key, reply)
        assert not picture_questions.is_right(qtype, key, wrong(qtype, key, reply)), (qtype, key, reply)
    assert set(phrasings) == set(QUESTION_TYPES)
    assert all(len(p) >= 4 for p in phrasings.values()), {k: len(p) for k, p in phrasings.items()}


def test_is_right():
    assert picture_questions.is_right("colour", "blue", "The circle is blue.")
    assert not picture_questions.is_right("colour", "blue", "The circle is red.")
    assert not picture_questions.is_right("colour", "blue", "The circle is blue or red.")
    assert picture_questions.is_right("shape", "star", "They are stars.")
    assert picture_questions.is_right("count", "3", "There are 3 stars.")
    assert not picture_questions.is_right("count", "3", "There are 13 stars.")
    assert not picture_questions.is_right("count", "3", "There are 3 or 4 stars.")
    assert picture_questions.is_right("text", "7", "The number 7 is written in the picture.")
    assert picture_questions.is_right("size", "big", "It is big.") and not picture_questions.is_right(
        "size", "big", "It is small."
    )
    assert picture_questions.is_right("describe", "A red circle and a blue star.", "a blue star and a red circle")
    assert not picture_questions.is_right(
        "describe", "A red circle and a blue star.", "A red circle, a blue star and a square."
    )
    assert not picture_questions.is_right("describe", "A red circle and a blue star.", "A red circle.")
    assert picture_questions.is_right("compare", "second", "The second picture has more stars.")
    assert not picture_questions.is_right("bars", "green", "")


def test_ask_refuses_a_type_that_does_not_fit():
    with pytest.raises(ValueError):
        picture_questions.ask(scenes("text", 1)[0], random.Random(0), "colour")


def test_image_conversations():
    kinds = Counter()
    for seed in range(300):
        conv = picture_questions.image_conversation(seed)
        messages, images = conv["messages"], conv["images"]
        assert [m["role"] for m in messages] == ["user", "assistant"] * (len(messages) // 2)
        blocks = [b for m in messages if m["role"] == "user" for b in m["content"]]
        assert sum(b["type"] == "image" for b in blocks) == len(images) >= 1
        assert all(b["type"] == "image" or b["text"] for b in blocks)
        assert all(isinstance(m["content"], str) for m in messages if m["role"] == "assistant")
        assert all(i.size == (SIZE, SIZE) and i.mode == "RGB" for i in images)
        assert conv["checks"]
        for index, qtype, key in conv["checks"]:
            assert messages[index]["role"] == "assistant"
            assert qtype in (*QUESTION_TYPES, "compare")
            assert picture_questions.is_right(qtype, key, messages[index]["content"]), (qtype, key, messages[index])
        if len(images) == 2:
            kinds["two pictures"] += 1
            assert conv["checks"][0][2] in ("first", "second")
        elif len(messages) == 4 and len(conv["checks"]) == 2:
            kinds["follow-up"] += 1
        elif len(messages) == 4:
            kinds["thanks"] += 1
        else:
            kinds["one question"] += 1
    assert 150 < kinds["one question"] < 250 and kinds["follow-up"] > 20
    assert kinds["two pictures"] > 10 and kinds["thanks"] > 3


def test_the_mix_of_conversations_follows_its_arguments():
    def mix(**how):
        convs = [picture_questions.image_conversation(seed, **how) for seed in range(400)]
        pairs = sum(len(c["images"]) == 2 for c in convs)
        singles = Counter(c["checks"][0][1] for c in convs if len(c["images"]) == 1 and len(c["messages"]) == 2)
        return pairs / len(convs), singles

    share, _ = mix()
    more, singles = mix(compare=0.35, types=("colour", "colour", "count"))
    assert 0.05 < share < 0.15 and 0.28 < more < 0.42
    assert set(singles) == {"colour", "count"} and singles["colour"] > 1.5 * singles["count"]


def test_together_puts_the_named_shapes_side_by_side():
    def both(together=()):  # descriptions of pictures of several things that name a circle and a triangle
        convs = [picture_questions.image_conversation(s, 0.0, ("describe",), together) for s in range(300)]
        replies = [c["messages"][1]["content"] for c in convs if len(c["messages"]) == 2]
        several = [r for r in replies if r.count(",") + r.count(" and ") >= 1]
        return sum("circle" in r and "triangle" in r for r in several) / len(several)

    assert both(("circle", "triangle")) > both() + 0.2


def test_comparisons_are_right():
    for seed in range(300):
        conv = picture_questions.image_conversation(seed)
        if len(conv["images"]) != 2:
            continue
        question, (_, _, key) = conv["messages"][0]["content"][-1]["text"], conv["checks"][0]
        first, second = (i.tobytes() for i in conv["images"])
        if "more" in question or "fewer" in question:
            continue  # counted below from the scenes
        shape = re.search("|".join(SHAPES), question).group()
        assert shape in conv["messages"][1]["content"] and key in ("first", "second")
        assert first != second
    for seed in range(200):
        rng = random.Random(seed)
        scenes_, question, reply, key = picture_questions._compare(rng)
        a, b = (len(s.things) for s in scenes_)
        if "more" in question:
            assert key == ("first" if a > b else "second")
        elif "fewer" in question:
            assert key == ("first" if a < b else "second")
        else:
            shape = re.search("|".join(SHAPES), question).group()
            assert scenes_[("first", "second").index(key)].things[0].shape == shape


def test_held_out_questions():
    questions = picture_questions.held_out_image_questions(16)
    assert Counter(q["qtype"] for q in questions) == {q: 2 for q in QUESTION_TYPES}
    for q in questions:
        (message,) = q["chat"]
        assert message["role"] == "user" and [b["type"] for b in message["content"]] == ["image", "text"]
        assert q["image"].size == (SIZE, SIZE) and isinstance(q["answer"], str) and q["answer"]
        assert draw(q["scene"]).tobytes() == q["image"].tobytes()
    assert [q["image"].tobytes() for q in questions] == [
        q["image"].tobytes() for q in picture_questions.held_out_image_questions(16)
    ]
    held_out = {q["image"].tobytes() for q in questions}
    for seed in range(201):
        assert not held_out & {i.tobytes() for i in picture_questions.image_conversation(seed)["images"]}, seed
