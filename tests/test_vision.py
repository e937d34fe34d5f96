"""Tests for training/vision.py: the Llava model built around the embedded chat model, its processor and chat
template, the loss mask, a few training steps, and the files transformers loads back (processor path and
pipeline path), on pictures the tests draw."""

import os
import random
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import chatkit  # noqa: E402
from chatkit import picture_questions, pictures  # noqa: E402
from training import vision  # noqa: E402


@pytest.fixture(scope="module")
def built():
    return vision.build(chatkit.embedded_model_path())


@pytest.fixture(scope="module")
def saved(built, tmp_path_factory):
    model, processor = built
    return vision.save(model, processor, tmp_path_factory.mktemp("vision"))


def _chat(seed=0):
    scene = pictures.random_scene(random.Random(seed), "one")
    block = {"type": "image", "image": pictures.draw(scene)}
    return [{"role": "user", "content": [block, {"type": "text", "text": "What colour is it?"}]}]


def test_the_template_writes_one_image_token_per_block_and_the_processor_expands_it(built):
    _, processor = built
    chat = _chat()
    text = processor.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
    assert text.count(vision.IMAGE_TOKEN) == 1 and text.endswith("<|im_start|>assistant\n")
    inputs = processor.apply_chat_template(
        chat, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    image_id = processor.tokenizer.convert_tokens_to_ids(vision.IMAGE_TOKEN)
    assert int((inputs["input_ids"] == image_id).sum()) == vision.IMAGE_TOKENS == 64
    assert tuple(inputs["pixel_values"].shape) == (1, 3, pictures.SIZE, pictures.SIZE)


def test_text_only_chats_render_as_the_chat_model_does(built):
    _, processor = built
    tokenizer = chatkit.load_tokenizer(chatkit.embedded_model_path())
    chat = [{"role": "user", "content": "What is the capital of France?"}]
    assert processor.apply_chat_template(chat, tokenize=False, add_generation_prompt=True) == (
        tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    )


def test_the_language_model_starts_as_the_chat_model(built):
    model, processor = built
    chat_model, tokenizer = chatkit.load_model(chatkit.embedded_model_path())
    chat = [{"role": "user", "content": "What is the capital of France?"}]
    ids = tokenizer.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        a = chat_model(**ids).logits
        b = model(**ids).logits[..., : a.shape[-1]]
    assert torch.allclose(a, b, atol=1e-5)


def test_the_loss_mask_covers_the_replies_and_their_end_tokens_only(built):
    _, processor = built
    conv = picture_questions.image_conversation(1)
    ids, mask, images = vision.encode_image_conversation(processor, conv)
    trained = processor.tokenizer.decode([i for i, m in zip(ids, mask) if m])
    replies = [m["content"] for m in conv["messages"] if m["role"] == "assistant"]
    assert trained == "".join(r + "<|im_end|>" for r in replies)
    assert len(images) == sum(
        isinstance(b, dict) and b.get("type") == "image"
        for m in conv["messages"]
        if isinstance(m["content"], list)
        for b in m["content"]
    )


def test_patch_labels_name_what_covers_each_patch_and_where_each_thing_is():
    big = pictures.Thing("square", "red", 20, 20, pictures.BIG)  # pixels 9..31 both ways
    small = pictures.Thing("circle", "blue", 50, 50, pictures.SMALL)
    what, paint, centre = vision.patch_labels(pictures.Scene("two", [big, small]))
    grid = what.view(8, 8)
    assert grid[2, 2] == vision.WHAT.index("square") and paint.view(8, 8)[2, 2] == vision.PAINT.index("red")
    assert grid[6, 6] == vision.WHAT.index("circle") and paint.view(8, 8)[6, 6] == vision.PAINT.index("blue")
    assert grid[0, 7] == 0 and grid[7, 0] == 0  # background
    assert centre.sum() == 2 and centre.view(8, 8)[2, 2] == 1 and centre.view(8, 8)[6, 6] == 1
    digit = pictures.random_scene(random.Random(1), "text")
    assert set(vision.patch_labels(digit)[0].tolist()) == {0, vision.WHAT.index(f"digit {digit.text}")}


def test_the_tower_also_learns_where_each_patch_is(built):
    _, processor = built
    scene = pictures.Scene("two", [pictures.Thing("square", "red", 20, 20, pictures.BIG)])
    pixels, labels = vision._tower_batch(processor, [scene, scene])
    column, row = labels[-2:]
    assert pixels.shape[0] == 2 and len(labels) == 5
    assert column[0].view(8, 8)[2].tolist() == list(range(8)) and row[1].view(8, 8)[:, 5].tolist() == list(range(8))


def test_the_tower_pretraining_lowers_its_loss_and_leaves_the_language_model_alone():
    model, processor = vision.build(chatkit.embedded_model_path())
    language = model.model.language_model.layers[0].mlp.down_proj.weight.clone()
    short = vision.pretrain_tower(model, processor, steps=2, batch=4, warmup=1, progress=False)
    longer = vision.pretrain_tower(model, processor, steps=30, batch=8, warmup=1, progress=False)
    assert longer["tower_loss"] < short["tower_loss"]
    assert torch.equal(language, model.model.language_model.layers[0].mlp.down_proj.weight)


def test_a_few_training_steps_lower_the_loss_and_train_the_projector_not_the_tower():
    model, processor = vision.build(chatkit.embedded_model_path())
    tower = model.model.vision_tower.embeddings.patch_embedding.weight.clone()
    projector = model.model.multi_modal_projector.linear_1.weight.clone()
    rows = [vision.encode_image_conversation(processor, picture_questions.image_conversation(s)) for s in range(4)]
    batch = vision._batch(processor, rows)
    with torch.no_grad():
        first = model(**batch).loss.item()
    vision.train_vision(model, processor, steps=6, batch=4, text_rows=1, warmup=1, progress=False)
    with torch.no_grad():
        after = model(**batch).loss.item()
    assert after < first
    assert torch.equal(tower, model.model.vision_tower.embeddings.patch_embedding.weight)
    assert not torch.equal(projector, model.model.multi_modal_projector.linear_1.weight)


def test_with_a_tower_rate_the_tower_learns_too():
    model, processor = vision.build(chatkit.embedded_model_path())
    tower = model.model.vision_tower.embeddings.patch_embedding.weight.clone()
    record = vision.train_vision(
        model, processor, steps=2, batch=2, text_rows=1, warmup=1, tower_tuning_lr=1e-3, progress=False
    )
    assert record["tower_tuning_lr"] == 1e-3
    assert not torch.equal(tower, model.model.vision_tower.embeddings.patch_embedding.weight)


def test_saved_files_load_with_the_auto_classes_and_the_pipeline(saved, built):
    from transformers import AutoModelForImageTextToText, AutoProcessor, pipeline

    model = AutoModelForImageTextToText.from_pretrained(saved)
    processor = AutoProcessor.from_pretrained(saved)
    assert type(model).__name__ == "LlavaForConditionalGeneration"
    chat = _chat(3)
    by_hand = vision.answer(model, processor, chat, max_new_tokens=8)
    assert by_hand == vision.answer(*built, chat, max_new_tokens=8)
    pipe = pipeline("image-text-to-text", model=str(saved))
    out = pipe(text=chat, max_new_tokens=8, generate_kwargs={"do_sample": False})
    assert out[0]["generated_text"][-1]["content"] == by_hand


def test_saved_files_name_no_path_of_the_building_machine(saved):
    text = "".join(p.read_text() for p in saved.iterdir() if p.suffix in (".json", ".jinja"))
    assert str(chatkit.embedded_model_path()) not in text and "_name_or_path" not in text


def test_the_shipped_files_name_no_path_of_the_building_machine():
    assert "_name_or_path" not in (Path(chatkit.embedded_vision_path()) / "config.json").read_text()


def test_load_model_gives_a_model_that_sees_its_processor_and_reply_takes_it(saved):
    from transformers import LlavaProcessor

    model, processor = chatkit.load_model(saved, device_map=None)
    assert isinstance(processor, LlavaProcessor) and hasattr(model.config, "vision_config")
    chat = _chat(3)
    inputs = processor.apply_chat_template(
        chat, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    out = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    by_hand = processor.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert chatkit.reply(model, None, chat, processor=processor, max_new_tokens=8) == by_hand


def test_a_template_without_content_blocks_is_refused():
    with pytest.raises(ValueError, match="content-block"):
        vision.vision_template("{{ messages[0]['content'] }}")
