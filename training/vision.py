"""The embedded vision-language model: the embedded chat model, given eyes, in the Llava architecture.

A tiny SigLIP vision tower (2 layers, hidden size 128) reads a 64x64 picture as 64 patches of 8x8 pixels;
a two-layer projector maps each patch to one token embedding of the chat model; the processor's chat
template writes `<image>` for an image block, and `LlavaProcessor` expands it to the 64 image tokens.
Llava is the simplest architecture that transformers loads with `AutoProcessor` and
`AutoModelForImageTextToText` and runs in `pipeline("image-text-to-text")`: one image size, no image
splitting, standard files. The language model starts from the embedded chat model's weights (its
tokenizer gains one token, `<image>`), so it keeps its chat skills. Training has two parts, as Llava's:
`pretrain_tower` first teaches the tower alone to name what each patch shows and where it is (its labels
come from the scenes of `chatkit.pictures`), then `train_vision` trains the projector and the language model
on picture chats (`chatkit.picture_questions`) mixed with the text conversations of `training/corpus.py`, the
tower frozen (or, given `tower_tuning_lr`, learning too).

What this leaves out: image splitting and dynamic resolution (SmolVLM, Qwen2.5-VL), a tower pretrained on
real photographs and their captions; the pictures are the repository's own drawings.

Example:
    >>> model, processor = build(chatkit.embedded_model_path())          # doctest: +SKIP
    >>> chat = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What colour is it?"}]}]
"""

import math
import random
import time
from pathlib import Path

import numpy
import torch

from chatkit import generation, picture_questions, pictures
from training import corpus
from training.train import encode_conversation

IMAGE_TOKEN = "<image>"
VISION = dict(hidden_size=128, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4)
IMAGE_TOKENS = (pictures.SIZE // 8) ** 2  # one token per 8x8 patch
TEXT_BLOCKS = "{% if block['type'] == 'text' %}{{ block['text'] }}{% endif %}"
IMAGE_AND_TEXT_BLOCKS = (
    "{% if block['type'] == 'image' %}{{ '" + IMAGE_TOKEN + "' }}"
    "{% elif block['type'] == 'text' %}{{ block['text'] }}{% endif %}"
)


def vision_template(chat_template):
    """The chat model's template, writing `<image>` for each image block (the text blocks as before)."""
    if TEXT_BLOCKS not in chat_template:
        raise ValueError("the chat template has no content-block loop to extend; was it built by training/?")
    return chat_template.replace(TEXT_BLOCKS, IMAGE_AND_TEXT_BLOCKS)


def build(chat_dir, seed=0):
    """A new vision-language model around the chat model in `chat_dir`: (model, processor).

    The vision tower and the projector are new (seeded); the language model is the chat model's, with
    one more embedding row for `<image>` (never generated: `suppress_tokens`)."""
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        SiglipImageProcessorPil,
        SiglipVisionConfig,
    )

    tokenizer = AutoTokenizer.from_pretrained(chat_dir)
    tokenizer.add_tokens([IMAGE_TOKEN], special_tokens=True)
    language = AutoModelForCausalLM.from_pretrained(chat_dir)
    vision = SiglipVisionConfig(
        **VISION, image_size=pictures.SIZE, patch_size=pictures.SIZE // 8, vision_use_head=False
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=language.config,
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        image_seq_length=IMAGE_TOKENS,
        vision_feature_select_strategy="full",  # SigLIP has no CLS token: every patch is a token
        vision_feature_layer=-1,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config)
    model.model.language_model.load_state_dict(language.model.state_dict())
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    with torch.no_grad():  # the new row: the mean of the others (it is read, never written)
        embeddings = model.get_input_embeddings().weight
        embeddings[-1] = embeddings[:-1].mean(0)
    model.generation_config = language.generation_config
    model.generation_config.suppress_tokens = [config.image_token_index]
    image_processor = SiglipImageProcessorPil(size={"height": pictures.SIZE, "width": pictures.SIZE})
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=pictures.SIZE // 8,
        vision_feature_select_strategy="full",
        chat_template=vision_template(tokenizer.chat_template),
        image_token=IMAGE_TOKEN,
    )
    return model, processor


def _ids(processor, text):
    """Token ids of rendered `text`, each `<image>` expanded to its image tokens as the processor does."""
    expanded = text.replace(IMAGE_TOKEN, IMAGE_TOKEN * IMAGE_TOKENS)
    return processor.tokenizer(expanded, add_special_tokens=False).input_ids


def encode_image_conversation(processor, conv):
    """(ids, mask, images) of a conversation from `picture_questions.image_conversation`: the mask covers each
    assistant reply and its end token, as `training.train.encode_conversation` does for text."""
    messages = conv["messages"]
    render = processor.apply_chat_template
    ids = _ids(processor, render(messages, tokenize=False))
    mask = [0] * len(ids)
    for k, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start = len(_ids(processor, render(messages[:k], tokenize=False, add_generation_prompt=True)))
        end = len(_ids(processor, render(messages[: k + 1], tokenize=False).removesuffix("\n")))
        mask[start:end] = [1] * (end - start)
    return ids, mask, conv["images"]


def _batch(processor, rows):
    """Pad (ids, mask, images) rows on the right into input_ids, attention_mask, labels, pixel_values."""
    pad = processor.tokenizer.pad_token_id
    width = max(len(ids) for ids, _, _ in rows)
    input_ids = torch.full((len(rows), width), pad)
    labels = torch.full((len(rows), width), -100)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    images = []
    for r, (ids, mask, row_images) in enumerate(rows):
        input_ids[r, : len(ids)] = torch.tensor(ids)
        attention[r, : len(ids)] = 1
        labels[r, : len(ids)] = torch.tensor([i if m else -100 for i, m in zip(ids, mask)])
        images += row_images
    batch = dict(input_ids=input_ids, attention_mask=attention, labels=labels)
    if images:
        batch["pixel_values"] = processor.image_processor(images, return_tensors="pt")["pixel_values"]
    return batch


def _schedule(step, steps, warmup):
    """The learning rate's share at `step`: a linear warm-up, then a cosine decay to 0."""
    return step / warmup if step < warmup else 0.5 * (1 + math.cos(math.pi * (step - warmup) / (steps - warmup)))


PATCH = pictures.SIZE // 8  # pixels per patch side
SIDE = pictures.SIZE // PATCH  # patches per row (and per column)
PLACES = (range(SIDE), range(SIDE))  # what the tower learns of where a patch is: its column and row
WHAT = ("background", *pictures.SHAPES, *(f"digit {d}" for d in range(10)), "bar")
PAINT = ("none", *pictures.COLOURS)


def _mask(scene):
    """A boolean tensor (SIZE, SIZE): where the picture of `scene` is not white."""
    return torch.from_numpy(numpy.asarray(pictures.draw(scene)) < 250).any(-1)


def _bar_mask(k, height):
    """A boolean tensor (SIZE, SIZE): where bar `k` of a bar chart is (as `pictures.draw` draws it)."""
    mask = torch.zeros(pictures.SIZE, pictures.SIZE, dtype=torch.bool)
    left, base = 8 + k * 18, pictures.SIZE - 8
    mask[base - height : base, left : left + 12] = True
    return mask


def patch_labels(scene):
    """What each 8x8 patch shows, from the scene itself: (what, paint, centre), each a tensor of the 64 patches
    in the vision tower's order. `what` indexes WHAT (the shape, digit or bar covering most of the patch, at
    least 4 of its 64 pixels; else background), `paint` indexes PAINT (its colour; "none" for a digit), and
    `centre` is 1 where a thing's centre lies (so counting things is counting those patches)."""
    parts = [(_mask(pictures.Scene(scene.kind, [t])), WHAT.index(t.shape), PAINT.index(t.colour)) for t in scene.things]
    if scene.text is not None:
        text = pictures.Scene("text", [], text=scene.text, text_at=scene.text_at)
        parts.append((_mask(text), WHAT.index(f"digit {scene.text}"), 0))
    for k, (colour, height) in enumerate(scene.bars or []):
        parts.append((_bar_mask(k, height), WHAT.index("bar"), PAINT.index(colour)))
    best = torch.full((SIDE * SIDE,), 3)  # covered pixels of the best part so far: 4 or more to count
    what, paint, centre = (torch.zeros(SIDE * SIDE, dtype=torch.long) for _ in range(3))
    for mask, w, c in parts:
        covered = mask.view(SIDE, PATCH, SIDE, PATCH).sum((1, 3)).flatten()
        wins = covered > best
        best = torch.where(wins, covered, best)
        what[wins], paint[wins] = w, c
    for t in scene.things:
        centre[(t.y // PATCH) * SIDE + t.x // PATCH] = 1
    return what, paint, centre


def _tower_batch(processor, scenes):
    """The pictures of `scenes` as the tower reads them, and their patch labels: (pixel_values, [what, paint,
    centre, column, row]), each label a tensor (pictures, 64)."""
    pixels = processor.image_processor([pictures.draw(s) for s in scenes], return_tensors="pt")["pixel_values"]
    labels = [torch.stack(x) for x in zip(*(patch_labels(s) for s in scenes))]
    places = torch.arange(SIDE * SIDE).expand(len(scenes), -1)
    return pixels, labels + [places % SIDE, places // SIDE]


def pretrain_tower(model, processor, steps=1500, batch=32, lr=2e-3, warmup=50, seed=0, threads=1, progress=True):
    """Teach the vision tower to see before it meets the language model, as real towers are pretrained
    (SigLIP on image-text pairs): linear heads read each patch's output and are trained to name what covers
    the patch (`patch_labels`), on training pictures only, and where the patch is (its column and row: else
    the tower's outputs keep no trace of it, and "what is on the left?" cannot be answered; the language
    model knows only the order of the image tokens, which tells rows apart far better than columns). The
    heads are dropped afterwards."""
    from tqdm.auto import tqdm

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = random.Random(seed + 7)
    tower, hidden = model.model.vision_tower, model.config.vision_config.hidden_size
    heads = torch.nn.ModuleList(torch.nn.Linear(hidden, len(k)) for k in (WHAT, PAINT, (0, 1), *PLACES))
    optimizer = torch.optim.AdamW([*tower.parameters(), *heads.parameters()], lr=lr, weight_decay=0.01)
    tower.train()
    started = time.time()
    bar, losses = tqdm(range(steps), desc="tower", disable=not progress), []
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = lr * _schedule(step, steps, warmup)
        pixels, labels = _tower_batch(processor, [pictures.random_scene(rng) for _ in range(batch)])
        features = tower(pixels, output_hidden_states=True).hidden_states[-1]
        loss = sum(
            torch.nn.functional.cross_entropy(h(features).flatten(0, 1), y.flatten()) for h, y in zip(heads, labels)
        )
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if step % 20 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    tower.eval()
    rng = random.Random(seed + 8)
    pixels, labels = _tower_batch(processor, [pictures.random_scene(rng, held_out=True) for _ in range(256)])
    with torch.no_grad():
        features = tower(pixels, output_hidden_states=True).hidden_states[-1]
    shown = labels[0] > 0  # the patches that show something
    named = [(h(features).argmax(-1) == y)[shown].float().mean().item() for h, y in zip(heads, labels)]
    return dict(
        tower_steps=steps,
        tower_batch=batch,
        tower_lr=lr,
        tower_loss=round(sum(losses[-50:]) / len(losses[-50:]), 4),
        tower_what=round(named[0], 4),
        tower_paint=round(named[1], 4),
        tower_column=round(named[3], 4),
        tower_minutes=round((time.time() - started) / 60, 1),
    )


def train_vision(
    model,
    processor,
    steps=3000,
    batch=16,
    text_rows=4,
    lr=2e-3,
    language_lr=3e-4,
    warmup=100,
    seed=0,
    threads=1,
    progress=True,
    compare=0.10,
    types=picture_questions.QUESTION_TYPES,
    tower_tuning_lr=0.0,
    together=(),
):
    """Train on fresh picture conversations each step (seeds from `seed * 1_000_003`; `compare`, `types` and
    `together` go to `picture_questions.image_conversation`), with `text_rows` text conversations per step so
    the chat skills stay. The projector learns at `lr`, the language model at `language_lr`; the vision tower stays as
    `pretrain_tower` left it (frozen, as Llava keeps its pretrained tower) unless `tower_tuning_lr` is above 0
    (then it learns too, at that rate, as later VLMs tune theirs end to end). Returns the run record."""
    from tqdm.auto import tqdm

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = random.Random(seed)
    tower = model.model.vision_tower
    tower.requires_grad_(tower_tuning_lr > 0)
    language = [p for n, p in model.named_parameters() if "language_model" in n or "lm_head" in n]
    groups = [(list(model.model.multi_modal_projector.parameters()), lr), (language, language_lr)]
    groups += [(list(tower.parameters()), tower_tuning_lr)] if tower_tuning_lr > 0 else []
    optimizer = torch.optim.AdamW([{"params": ps, "lr": peak} for ps, peak in groups], weight_decay=0.01)
    peaks = [peak for _, peak in groups]

    model.train()
    started, bar = time.time(), tqdm(range(steps), desc="vision", disable=not progress)
    next_seed = seed * 1_000_003
    for step in bar:
        for group, peak in zip(optimizer.param_groups, peaks):
            group["lr"] = peak * _schedule(step, steps, warmup)
        rows = []
        for _ in range(batch):
            rows.append(
                encode_image_conversation(
                    processor, picture_questions.image_conversation(next_seed, compare, types, together)
                )
            )
            next_seed += 1
        for _ in range(text_rows):
            ids, mask = encode_conversation(processor.tokenizer, corpus.conversation(rng=rng))
            rows.append((ids[:256], mask[:256], []))
        loss = model(**_batch(processor, rows)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step % 20 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    return dict(
        steps=steps,
        batch=batch,
        text_rows=text_rows,
        lr=lr,
        language_lr=language_lr,
        tower_tuning_lr=tower_tuning_lr,
        seed=seed,
        threads=threads,
        train_minutes=round((time.time() - started) / 60, 1),
        torch=torch.__version__,
    )


def with_images(messages, images):
    """`messages` with the i-th `{"type": "image"}` block holding `images[i]` (as the processor reads them)."""
    images = iter(images)
    return [
        dict(m, content=[dict(b, image=next(images)) if b.get("type") == "image" else b for b in m["content"]])
        if isinstance(m["content"], list)
        else m
        for m in messages
    ]


def answer(model, processor, chat, max_new_tokens=48):
    """The model's greedy reply to `chat` (image blocks hold their picture: `with_images`)."""
    return generation.reply(model, None, chat, processor=processor, max_new_tokens=max_new_tokens)


def evaluate_vision(model, processor, questions, progress=None):
    """Right answers per question type on `picture_questions.held_out_image_questions` (and `held_out_comparisons`):
    {qtype: (fraction, n)}."""
    counts = {}
    model.eval()
    for q in questions:
        reply = answer(model, processor, with_images(q["chat"], q.get("images") or [q["image"]]))
        right, n = counts.get(q["qtype"], (0, 0))
        counts[q["qtype"]] = (right + picture_questions.is_right(q["qtype"], q["answer"], reply), n + 1)
        if progress is not None:
            progress.update(1)
    return {k: (right / n, n) for k, (right, n) in counts.items()}


def save(model, processor, out):
    """Write the model and its processor to `out` (loadable with AutoModelForImageTextToText / AutoProcessor)."""
    out = Path(out)
    model.config.text_config._name_or_path = ""  # where the chat model was read from: no path of this machine
    model.save_pretrained(out)
    processor.save_pretrained(out)
    for path in out.iterdir():  # safetensors writes its file private; the package's files are world-readable
        path.chmod(0o644)
    return out
