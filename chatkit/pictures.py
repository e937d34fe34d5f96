"""The pictures of the vision-language model: tiny drawings, each drawn from a seed.

Every picture is 64x64 RGB on a white background (the vision tower sees it as 8x8 patches of 8x8 pixels),
drawn with Pillow from a `Scene`, and every scene is drawn from a seed. Kinds of scene:

- "one": one thing (circle, square, triangle or star; six colours; small or big) somewhere;
- "count": 1 to 5 small things of the same shape and colour, not overlapping;
- "two": two things of different shapes and colours, left and right or top and bottom (`Scene.layout`);
- "mixed": 2 to 4 things, shapes all different and colours all different;
- "text": a digit written large in black;
- "bars": a bar chart of three bars of different colours and clearly different heights.

A hash of the pixels splits the pictures in two (`is_held_out`): training draws only from one part and
evaluation only from the other. `chatkit.picture_questions` asks about them.

Example:
    >>> import random
    >>> scene = random_scene(random.Random(0), "one")
    >>> draw(scene).size
    (64, 64)
    >>> scene.things[0].shape in SHAPES
    True
"""

import functools
import math
import zlib
from dataclasses import dataclass

SIZE = 64
SHAPES = ("circle", "square", "triangle", "star")
COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 160, 50),
    "blue": (30, 70, 220),
    "yellow": (235, 200, 0),
    "purple": (140, 50, 190),
    "orange": (245, 130, 0),
}
SMALL, BIG = 6, 11  # radius in pixels: a small thing is 13 pixels across, a big one 23
SIZES = {SMALL: "small", BIG: "big"}
MARGIN = 2  # pixels kept free between a thing and the border, and between two things
KINDS = ("one", "count", "two", "mixed", "text", "bars")
QUESTION_TYPES = ("colour", "shape", "count", "position", "size", "text", "bars", "describe")
KIND_QUESTIONS = {
    "one": ("colour", "shape", "size", "describe"),
    "count": ("count", "colour", "shape"),
    "two": ("position", "colour", "describe"),
    "mixed": ("colour", "describe", "count"),
    "text": ("text",),
    "bars": ("bars",),
}
QUESTION_KINDS = {q: tuple(k for k in KINDS if q in KIND_QUESTIONS[k]) for q in QUESTION_TYPES}
HELD_OUT_SHARE = 10  # one picture in 10 (by a hash of its pixels) is kept for evaluation


# ----------------------------------------------------------------------------- scenes


@dataclass
class Thing:
    """A shape of a colour, its centre (x, y) and radius (`size`) in pixels."""

    shape: str
    colour: str
    x: int
    y: int
    size: int

    def box(self):
        return (self.x - self.size, self.y - self.size, self.x + self.size, self.y + self.size)


@dataclass
class Scene:
    """What a picture shows: things, or a digit (`text`, drawn at `text_at` = (x, y, font size)), or bars.

    `bars` are (colour, height in pixels), left to right; `layout` ("left-right" or "top-bottom") says
    where the two things of a "two" scene are."""

    kind: str
    things: list[Thing]
    text: str | None = None
    bars: list[tuple[str, int]] | None = None
    layout: str | None = None
    text_at: tuple[int, int, int] | None = None


def _apart(a, b):
    """Whether the boxes of two things are at least MARGIN pixels apart (side by side or one above the other)."""
    gap = a.size + b.size + MARGIN
    return abs(a.x - b.x) > gap or abs(a.y - b.y) > gap


def _place(rng, shapes, colours, sizes, area=(0, 0, SIZE, SIZE), tries=200):
    """Things of these shapes, colours and sizes at free spots of `area` (rejection sampling on a 2-pixel
    grid), their centres at least 6 pixels apart left to right; None when they do not fit."""
    left, top, right, bottom = area
    things = []
    for shape, colour, r in zip(shapes, colours, sizes):
        xs = range(left + r + MARGIN, right - r - MARGIN, 2)
        ys = range(top + r + MARGIN, bottom - r - MARGIN, 2)
        for _ in range(tries):
            thing = Thing(shape, colour, rng.choice(xs), rng.choice(ys), r)
            if all(_apart(thing, t) and abs(thing.x - t.x) >= 6 for t in things):
                things.append(thing)
                break
        else:
            return None
    return things


def _one(rng, shape=None):
    shape = shape or rng.choice(SHAPES)
    return Scene("one", _place(rng, [shape], [rng.choice(list(COLOURS))], [rng.choice((SMALL, BIG))]))


def _count(rng, shape=None, n=None):
    shape, colour, n = shape or rng.choice(SHAPES), rng.choice(list(COLOURS)), n or rng.randint(1, 5)
    while (things := _place(rng, [shape] * n, [colour] * n, [SMALL] * n)) is None:
        pass
    return Scene("count", things)


def _two(rng):
    shapes, colours = rng.sample(SHAPES, 2), rng.sample(list(COLOURS), 2)
    sizes = [rng.choice((SMALL, BIG)) for _ in range(2)]
    layout = rng.choice(("left-right", "top-bottom"))
    half = SIZE // 2
    areas = (
        [(0, 0, half, SIZE), (half, 0, SIZE, SIZE)]
        if layout == "left-right"
        else [(0, 0, SIZE, half), (0, half, SIZE, SIZE)]
    )
    while True:
        first = _place(rng, shapes[:1], colours[:1], sizes[:1], areas[0])
        second = _place(rng, shapes[1:], colours[1:], sizes[1:], areas[1])
        if abs(first[0].x - second[0].x) >= 6:  # a clear left-to-right order for "describe"
            return Scene("two", first + second, layout=layout)


def _mixed(rng):
    while True:
        n = rng.randint(2, 4)
        shapes, colours = rng.sample(SHAPES, n), rng.sample(list(COLOURS), n)
        things = _place(rng, shapes, colours, [rng.choice((SMALL, BIG)) for _ in range(n)])
        if things is not None:
            return Scene("mixed", things)


def _text(rng):
    at = (SIZE // 2 + rng.randint(-5, 5), SIZE // 2 + rng.randint(-5, 5), rng.randint(34, 44))
    return Scene("text", [], text=str(rng.randint(0, 9)), text_at=at)


def _bars(rng):
    while True:
        heights = [rng.randint(12, 48) for _ in range(3)]
        if all(abs(a - b) >= 10 for i, a in enumerate(heights) for b in heights[i + 1 :]):
            return Scene("bars", [], bars=list(zip(rng.sample(list(COLOURS), 3), heights)))


MAKERS = {"one": _one, "count": _count, "two": _two, "mixed": _mixed, "text": _text, "bars": _bars}


def is_held_out(image):
    """Whether a picture belongs to evaluation (one in HELD_OUT_SHARE, by a hash of its pixels)."""
    return zlib.crc32(image.tobytes()) % HELD_OUT_SHARE == 0


def _drawn(rng, maker, held_out=False, **how):
    """A scene from `maker` on the asked side of the training/evaluation split."""
    while True:
        scene = maker(rng, **how)
        if is_held_out(draw(scene)) == held_out:
            return scene


def random_scene(rng, kind=None, held_out=False, **how):
    """A scene of `kind` (one of KINDS; any when None) drawn with `rng`, a training picture unless `held_out`;
    `how` fixes what the kind's maker allows ("one": shape; "count": shape, n)."""
    kind = kind or rng.choice(KINDS)
    return _drawn(rng, MAKERS[kind], held_out, **how)


# ----------------------------------------------------------------------------- drawing


@functools.lru_cache(maxsize=None)
def _font(size):
    """Pillow's default font at `size` pixels, or None when this Pillow cannot scale it (no FreeType)."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError, AttributeError):
        return None


def _write(image, text, x, y, size, font=True):
    """Write `text` in black centred on (x, y), about `size` pixels tall (the glyphs are about 0.7 of it)."""
    from PIL import Image, ImageDraw, ImageFont

    font = _font(size) if font else None
    if font is not None:
        ImageDraw.Draw(image).text(
            (x, y), text, font=font, fill=(0, 0, 0), anchor="mm", stroke_width=1, stroke_fill=(0, 0, 0)
        )
        return
    small = Image.new("L", (8 * len(text) + 8, 16), 0)  # the bitmap default font, scaled up whole
    ImageDraw.Draw(small).text((2, 2), text, font=ImageFont.load_default(), fill=255)
    small = small.crop(small.getbbox())
    scale = max(1, round(0.7 * size / small.height))
    mask = small.resize((small.width * scale, small.height * scale), Image.NEAREST)
    image.paste((0, 0, 0), (x - mask.width // 2, y - mask.height // 2), mask)


def _star(x, y, r):
    """The ten corners of a five-pointed star, pointing up."""
    corners = []
    for k in range(10):
        angle = -math.pi / 2 + k * math.pi / 5
        radius = r if k % 2 == 0 else r * 0.45
        corners.append((x + radius * math.cos(angle), y + radius * math.sin(angle)))
    return corners


def draw(scene):
    """The picture of a scene: RGB, SIZE x SIZE, white background, every shape filled with its colour."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (SIZE, SIZE), (255, 255, 255))
    pen = ImageDraw.Draw(image)
    for t in scene.things:
        fill = COLOURS[t.colour]
        if t.shape == "circle":
            pen.ellipse(t.box(), fill=fill)
        elif t.shape == "square":
            pen.rectangle(t.box(), fill=fill)
        elif t.shape == "triangle":
            pen.polygon([(t.x, t.y - t.size), (t.x + t.size, t.y + t.size), (t.x - t.size, t.y + t.size)], fill=fill)
        elif t.shape == "star":
            pen.polygon(_star(t.x, t.y, t.size), fill=fill)
        else:
            raise ValueError(f"unknown shape {t.shape!r}")
    if scene.text is not None:
        _write(image, scene.text, *(scene.text_at or (SIZE // 2, SIZE // 2, 40)))
    if scene.bars:
        base, width, step = SIZE - 8, 12, 18
        for k, (colour, height) in enumerate(scene.bars):
            left = 8 + k * step
            pen.rectangle((left, base - height, left + width - 1, base - 1), fill=COLOURS[colour])
        pen.line((4, base, SIZE - 5, base), fill=(0, 0, 0))
    return image


# ----------------------------------------------------------------------------- questions
