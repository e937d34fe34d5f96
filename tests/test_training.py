"""Tests for training/: the corpus generator, the tokenizer and template, the training script, and the
shipped embedded models (size, offline loading, the quality bar on a fast held-out subset)."""

import json
import os
import re
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import chatkit  # noqa: E402
from training import corpus  # noqa: E402
from training.evaluate import (  # noqa: E402
    EVAL_SEED,
    evaluate,
    evaluate_tools,
    is_correct,
    render_chat,
    render_plain,
    tool_conversations,
)
from training.tokenizer import build_tokenizer  # noqa: E402
from training.train import encode_conversation, encode_drill, make_batch, train  # noqa: E402

CHAT_DIR = Path(chatkit.embedded_model_path())
DRAFT_DIR = Path(chatkit.embedded_draft_path())


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(CHAT_DIR)


@pytest.fixture(scope="module")
def chat_model():
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(CHAT_DIR)


# ----------------------------------------------------------------------------- (a) corpus


def test_corpus_is_deterministic_by_seed():
    first = [c.messages for c in corpus.conversations(30, seed=5)]
    assert first == [c.messages for c in corpus.conversations(30, seed=5)]
    assert first != [c.messages for c in corpus.conversations(30, seed=6)]
    assert corpus.conversation(seed=11).messages == corpus.conversation(seed=11).messages


def test_corpus_covers_every_category_persona_and_follow_ups():
    convs = corpus.conversations(300, seed=0)
    turns = [t for c in convs for t in c.turns]
    assert {c.persona for c in convs} == set(corpus.PERSONAS)
    assert {t.category for t in turns} == set(corpus.CATEGORIES)
    assert any(c.system is None for c in convs) and any(c.system for c in convs)
    assert any(t.followup and t.user.startswith("And what about") for t in turns)
    assert any(t.category == "arithmetic" and t.followup for t in turns)
    for persona in corpus.PERSONAS[1:]:
        replies = [(t.reply, t.default_reply) for c in convs if c.persona == persona for t in c.turns]
        assert all(corpus.has_style(persona, r, d) for r, d in replies), persona
    for t in turns:  # every reply of the corpus passes its own checks
        if t.answer:
            assert is_correct(t, t.reply), (t.user, t.reply)


def test_arithmetic_stays_within_numbers_up_to_100_and_is_right():
    import random

    rng = random.Random(0)
    for _ in range(500):
        a, op, b = corpus.arithmetic_operands(rng)
        assert 0 <= a <= 100 and 0 <= b <= 100 and (op == "+" or a >= b)
    for line in corpus.arithmetic_drill(random.Random(1), 50).splitlines():
        question, working = line.split(": ")
        for step in working.rstrip(".").replace(", so ", " and ").split(" and "):
            left, result = step.split(" = ")
            assert eval(left) == int(result), line  # noqa: S307 (our own digits and +/-)
        assert working.endswith(f"so {question} = {eval(question)}.")  # noqa: S307


def test_unknown_persona_is_a_clear_error():
    import random

    with pytest.raises(ValueError, match="unknown persona"):
        corpus.stylize("wizard", "Hi.", "Hi.", random.Random(0))


# ----------------------------------------------------------------------------- (b) tokenizer + template


def test_shipped_tokenizer_is_reproduced_byte_for_byte(tmp_path):
    build_tokenizer(seed=0).save_pretrained(tmp_path)
    for name in ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja"]:
        assert (tmp_path / name).read_bytes() == (CHAT_DIR / name).read_bytes(), name
        assert (tmp_path / name).read_bytes() == (DRAFT_DIR / name).read_bytes(), name


def test_special_tokens_and_digits(tokenizer):
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.bos_token == "<|begin_of_text|>"
    assert tokenizer.pad_token == "<|pad|>"
    assert len({tokenizer.eos_token_id, tokenizer.bos_token_id, tokenizer.pad_token_id}) == 3
    tokens = tokenizer.tokenize("37 + 48 = 85")
    assert [t for t in tokens if t.strip("Ġ").isdigit()] == ["3", "7", "4", "8", "8", "5"]
    text = "Arr! 37 + 48 = 85. The capital of France is Paris."
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text


def test_chat_template_round_trip(tokenizer):
    chat = [
        {"role": "system", "content": "You are a pirate."},
        {"role": "user", "content": "What is 2 plus 3?"},
        {"role": "assistant", "content": "Arr! 2 + 3 = 5."},
    ]
    full = tokenizer.apply_chat_template(chat, tokenize=False)
    assert full == render_chat(chat)
    prompt = tokenizer.apply_chat_template(chat[:2], add_generation_prompt=True, tokenize=False)
    assert prompt == render_chat(chat[:2]) + "<|im_start|>assistant\n"
    cont = tokenizer.apply_chat_template(chat, continue_final_message=True, tokenize=False)
    assert cont == prompt + "Arr! 2 + 3 = 5."
    no_system = tokenizer.apply_chat_template(chat[1:2], add_generation_prompt=True, tokenize=False)
    assert no_system == "<|begin_of_text|><|im_start|>user\nWhat is 2 plus 3?<|im_end|>\n<|im_start|>assistant\n"
    ids = tokenizer.apply_chat_template(chat, return_dict=False)
    assert ids[0] == tokenizer.bos_token_id and ids.count(tokenizer.bos_token_id) == 1
    assert tokenizer.decode(ids) == full
    assert render_plain(chat[:2]) == "<|begin_of_text|>You are a pirate.\nWhat is 2 plus 3?\n"


def test_chat_template_rejects_bad_roles(tokenizer):
    with pytest.raises(Exception, match="Roles must be"):
        tokenizer.apply_chat_template([{"role": "wizard", "content": "Hi"}], tokenize=False)
    with pytest.raises(Exception, match="system message must come first"):
        tokenizer.apply_chat_template(
            [{"role": "user", "content": "Hi"}, {"role": "system", "content": "x"}], tokenize=False
        )


def test_loss_mask_covers_assistant_replies_and_answers_only(tokenizer):
    conv = corpus.conversation(seed=3)
    ids, mask = encode_conversation(tokenizer, conv)
    trained = tokenizer.decode([i for i, m in zip(ids, mask) if m])
    assert trained == "".join(t.reply + "<|im_end|>" for t in conv.turns)
    ids, mask = encode_drill(tokenizer, "2 + 3: 2 + 3 = 5 and 0 + 0 = 0, so 2 + 3 = 5.\n")
    assert ids[0] == tokenizer.bos_token_id
    assert tokenizer.decode([i for i, m in zip(ids, mask) if m]) == " 2 + 3 = 5 and 0 + 0 = 0, so 2 + 3 = 5.\n"
    x, y = make_batch(tokenizer, seed=0, step=3, steps=10, batch=2, seq_len=64, drill_only=0.0)
    assert x.shape == y.shape == (2, 64)
    x2, y2 = make_batch(tokenizer, seed=0, step=3, steps=10, batch=2, seq_len=64, drill_only=0.0)
    assert torch.equal(x, x2) and torch.equal(y, y2)


def test_conversations_without_tools_render_as_the_hand_written_template(tokenizer):
    for conv in corpus.conversations(200, seed=11):  # the tools branch changes nothing for them
        assert tokenizer.apply_chat_template(conv.messages, tokenize=False) == render_chat(conv.messages)


def test_tool_conversations_call_only_listed_tools_with_the_right_results():
    convs = corpus.tool_conversations(300, seed=5)
    calls = [(conv, t) for conv in convs for t in conv.turns if t.tool_call]
    assert {t.tool_call["name"] for _, t in calls} == set(corpus.TOOLS)
    assert all(t.tool_call["name"] in conv.tools for conv, t in calls)
    assert any(t.category == "tool_error" for _, t in calls) and any(not t.tool_call for c in convs for t in c.turns)
    for _, turn in calls:
        if turn.category == "arithmetic":
            a, b = turn.tool_call["arguments"].values()
            op = {"add": a + b, "subtract": a - b, "multiply": a * b}[turn.tool_call["name"]]
            assert turn.tool_result == str(op) == turn.answer and turn.answer in turn.default_reply
    assert corpus.tool_conversations(5, seed=9) == corpus.tool_conversations(5, seed=9)


def test_tool_conversation_loss_covers_calls_and_answers_not_tools_or_results(tokenizer):
    conv = next(c for c in corpus.tool_conversations(50, seed=2) if any(t.tool_call for t in c.turns))
    ids, mask = encode_conversation(tokenizer, conv)
    trained = tokenizer.decode([i for i, m in zip(ids, mask) if m])
    text = tokenizer.apply_chat_template(conv.messages, tools=conv.tool_functions, tokenize=False)
    assert tokenizer.decode(ids) == text
    for turn in conv.turns:
        if turn.tool_call:
            assert f'"name": "{turn.tool_call["name"]}"' in trained and turn.tool_result not in trained.replace(
                turn.reply, ""
            )
        assert turn.reply + "<|im_end|>" in trained
    assert "# Tools" not in trained and "<|im_start|>" not in trained


@pytest.fixture(scope="module")
def tool_figures(chat_model, tokenizer):
    return evaluate_tools(chat_model, tokenizer, tool_conversations(tokenizer, 40))


def test_tool_quality_bars(tool_figures):
    # The targets: 95% right calls (the card's 400 conversations: 99.7%), 98% right sums with the
    # calculator (98.3%); no call where none is needed 99.8%, right final answers 99.3%. On these 40
    # (19 calls), one miss moves a call figure by 5 points, so the bar here is 90%.
    assert tool_figures["call_right"][0] >= 0.90, tool_figures
    assert tool_figures["no_call"][0] >= 0.95, tool_figures
    assert tool_figures["answer_with_tools"][0] >= 0.90, tool_figures
    assert tool_figures["stops"][0] >= 0.95, tool_figures
    with_tools, without = (
        sum(tool_figures[f"{k}_{w}_tools"][0] * tool_figures[f"{k}_{w}_tools"][1] for k in ("sums", "products"))
        for w in ("with", "without")
    )
    assert with_tools > without  # the calculator helps


# ----------------------------------------------------------------------------- (c) training runs


def test_training_runs_end_to_end_and_resumes_identically(tokenizer, tmp_path):
    # warm-up covers the first two steps, so a 2-step run sees the same learning rates as a 4-step one
    tiny = dict(
        hidden=32, layers=1, heads=2, ff=64, batch=2, seq_len=48, warmup=2, drill_only=0.0, threads=1, progress=False
    )
    straight = train(tokenizer, tmp_path / "straight", steps=4, **tiny)
    ckpt = tmp_path / "state.pt"
    train(tokenizer, tmp_path / "first2", steps=2, checkpoint=ckpt, checkpoint_every=2, **tiny)
    assert torch.load(ckpt, weights_only=True)["step"] == 2
    resumed = train(tokenizer, tmp_path / "resumed", steps=4, checkpoint=ckpt, resume=True, **tiny)
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tmp_path / "resumed")
    assert model.config.eos_token_id == tokenizer.eos_token_id
    assert AutoTokenizer.from_pretrained(tmp_path / "resumed").chat_template
    assert oct((tmp_path / "resumed" / "model.safetensors").stat().st_mode & 0o777) == "0o644"
    figures = evaluate(model, tokenizer, corpus.conversations(1, seed=EVAL_SEED), max_new_tokens=4)
    assert 0.0 <= figures["stops"][0] <= 1.0


def test_training_cli_tiny_budget(tmp_path):
    from training.train import main

    main(
        [
            "--out",
            str(tmp_path / "m"),
            "--steps",
            "2",
            "--hidden",
            "32",
            "--layers",
            "1",
            "--heads",
            "2",
            "--ff",
            "64",
            "--batch",
            "1",
            "--seq-len",
            "32",
            "--warmup",
            "1",
        ]
    )
    assert (tmp_path / "m" / "model.safetensors").exists()
    assert json.loads((tmp_path / "m" / "training_run.json").read_text())["steps"] == 2


# ----------------------------------------------------------------------------- (d) quality bar


@pytest.fixture(scope="module")
def held_out_figures(chat_model, tokenizer):
    convs = corpus.conversations(50, seed=EVAL_SEED)
    # the bars need 50 conversations; showing that plain text is worse needs fewer (20: 2.4 s, not 7)
    return {
        True: evaluate(chat_model, tokenizer, convs, template=True, max_new_tokens=96),
        False: evaluate(chat_model, tokenizer, convs[:20], template=False, max_new_tokens=96),
    }


def test_quality_bar_with_chat_template(held_out_figures):
    figures = held_out_figures[True]
    assert figures["correct"][1] >= 40  # enough factual + arithmetic turns to mean something
    assert figures["correct"][0] >= 0.90, figures  # the bar: factual and arithmetic turns together
    assert figures["fact"][0] >= 0.90, figures
    # arithmetic alone scores 91.5% on the full 400-conversation evaluation; on this small subset
    # (a few dozen sums) one or two misses move it by several points, so the margin is wider here
    assert figures["arithmetic"][0] >= 0.80, figures
    assert figures["persona_style"][0] >= 0.90, figures
    assert figures["stops"][0] >= 0.95, figures


def test_plain_text_without_template_is_worse(held_out_figures):
    with_template, plain = held_out_figures[True], held_out_figures[False]
    # on the card's 400 conversations: 83.4% right and 96.4% in persona without it, 99.8% and 100% with it
    assert plain["correct"][0] < with_template["correct"][0]
    assert plain["persona_style"][0] <= with_template["persona_style"][0]


# ----------------------------------------------------------------------------- (e) shipped files


def test_shipped_size_and_draft_ratio():
    def megabytes(*folders):
        return sum(p.stat().st_size for folder in folders for p in folder.iterdir() if p.is_file()) / 2**20

    assert megabytes(CHAT_DIR, DRAFT_DIR) <= 16  # the chat model and its draft
    assert megabytes(Path(chatkit.embedded_vision_path())) <= 16  # the vision-language model: 16 MB more at most
    for folder in (CHAT_DIR, DRAFT_DIR, Path(chatkit.embedded_vision_path())):
        assert (folder / "model.safetensors").stat().st_mode & 0o044 == 0o044  # world-readable
    chat_cfg = json.loads((CHAT_DIR / "config.json").read_text())
    draft_cfg = json.loads((DRAFT_DIR / "config.json").read_text())
    assert chat_cfg["dtype"] == draft_cfg["dtype"] == "float32"
    assert chat_cfg["vocab_size"] == draft_cfg["vocab_size"]
    assert (CHAT_DIR / "README.md").exists()


def test_draft_is_ten_times_smaller_and_shares_the_tokenizer(chat_model):
    from transformers import AutoModelForCausalLM

    draft = AutoModelForCausalLM.from_pretrained(DRAFT_DIR)
    assert chat_model.num_parameters() >= 10 * draft.num_parameters()
    assert (CHAT_DIR / "tokenizer.json").read_bytes() == (DRAFT_DIR / "tokenizer.json").read_bytes()


def test_generation_config_stops_at_end_of_turn(tokenizer):
    gen = json.loads((CHAT_DIR / "generation_config.json").read_text())
    assert gen["eos_token_id"] == tokenizer.eos_token_id == tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert gen["pad_token_id"] == tokenizer.pad_token_id


def test_pipeline_loads_offline_and_answers(monkeypatch):
    from transformers import pipeline

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    chat = pipeline("text-generation", model=chatkit.embedded_model_path())
    out = chat([{"role": "user", "content": "What is the capital of France?"}], do_sample=False)
    reply = out[0]["generated_text"][-1]
    assert reply["role"] == "assistant" and "Paris" in reply["content"]
    pirate = chat(
        [{"role": "system", "content": "You are a pirate."}, {"role": "user", "content": "What is 12 plus 30?"}],
        do_sample=False,
    )
    assert "42" in pirate[0]["generated_text"][-1]["content"]


# ----------------------------------------------------------------------------- (f) thinking and phrasings


def test_thinking_template_switch_and_dropped_thoughts(tokenizer):
    chat = [{"role": "user", "content": "What is 23 + 45 + 12?"}]
    off = tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
    assert off == tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False, enable_thinking=False)
    assert off.endswith("<|im_start|>assistant\n") and off == render_chat(chat) + "<|im_start|>assistant\n"
    on = tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False, enable_thinking=True)
    assert on == off + "<think>\n"
    for field in ("thinking", "reasoning_content"):
        reply = {"role": "assistant", "content": "23 + 45 + 12 = 80.", field: "23 + 45: ..., so 68."}
        last = tokenizer.apply_chat_template(chat + [reply], tokenize=False)
        assert last.endswith("<think>\n23 + 45: ..., so 68.\n</think>\n\n23 + 45 + 12 = 80.<|im_end|>\n")
        later = chat + [reply, {"role": "user", "content": "Now add 7."}]
        rendered = tokenizer.apply_chat_template(later, add_generation_prompt=True, tokenize=False)
        assert "so 68" not in rendered and "<think>" not in rendered  # earlier thoughts are dropped


def test_thinking_conversations_train_the_last_thought_or_every_direct_reply(tokenizer):
    from training import thinking
    from training.train import encode_thinking_conversation

    convs = [thinking.thinking_conversation(seed=s) for s in range(40)]
    assert {c.enable_thinking for c in convs} == {True, False}
    for conv in convs:
        ids, mask = encode_thinking_conversation(tokenizer, conv)
        trained = tokenizer.decode([i for i, m in zip(ids, mask) if m])
        text = tokenizer.decode(ids)
        last = conv.turns[-1]
        if conv.enable_thinking:
            assert trained == f"{last.thinking}\n</think>\n\n{last.reply}<|im_end|>"
            assert text.count("<think>") == 1  # earlier replies are rendered without their thought
        else:
            assert "<think>" not in text and trained == "".join(t.reply + "<|im_end|>" for t in conv.turns)
        for turn in conv.turns:
            if turn.category == "arithmetic" and turn.thinking:
                assert turn.thinking.split("so ")[-1].rstrip(".") == turn.answer  # the working ends in the answer


def test_thinking_questions_cover_every_kind_with_their_answers():
    from training import thinking

    questions = thinking.thinking_questions(25, seed=3)
    assert [q["kind"] for q in questions[:5]] == thinking.QUESTION_KINDS
    for q in questions:
        assert q["chat"][-1]["role"] == "user" and q["answer"]
        assert len(q["chat"]) == (3 if q["kind"] == "followup" else 1)
        if q["kind"] in ("three_numbers", "word_problem"):
            assert 0 <= int(q["answer"]) <= 100, q  # every partial result stays within the model's numbers


def test_rephrased_questions_keep_what_they_ask():
    import random

    from training import phrasing

    rng = random.Random(0)
    for conv in corpus.conversations(200, seed=5) + corpus.tool_conversations(100, seed=6):
        for turn in conv.turns:
            text = phrasing.rephrase(turn, rng)
            for key in ("a", "b"):
                if turn.slots and key in turn.slots:
                    assert str(turn.slots[key]) in text, (turn.slots, text)
            for key in ("country", "city", "animal"):
                if turn.slots and key in turn.slots:
                    names = [turn.slots[key], *phrasing.ALIASES.get(turn.slots[key], [])]
                    assert any(_named(n.split()[-1].lower(), text.lower()) for n in names), (turn.slots, text)


def _named(name, text):
    """`name` is in `text`, or a word one typo away (two letters swapped or one dropped, as phrasing._typo)."""
    if name[:3] in text:
        return True
    typos = {name[:i] + name[i + 1 :] for i in range(len(name))}
    typos |= {name[:i] + name[i + 1] + name[i] + name[i + 2 :] for i in range(len(name) - 1)}
    return any(word in typos for word in re.findall(r"[a-z]+", text))


def test_every_story_and_whole_question_keeps_both_numbers():
    from training import phrasing

    words = {k: v[0] for k, v in phrasing.STORY_WORDS.items()} | {"name2": "Mia"}
    for kind, (setups, endings) in phrasing.STORIES.items():
        for template in setups + phrasing.WHOLE[kind]:
            text = template.format(a=87, b=34, **words)
            assert "87" in text and "34" in text and "{" not in text, text
        assert all(e.endswith("?") for e in endings)


def test_reworded_tool_descriptions_reach_the_prompt(tokenizer):
    conv = next(c for c in corpus.tool_conversations(20, seed=2) if "add" in c.tools)
    conv.tool_descriptions = {"add": "Return the sum a + b."}
    prompt = tokenizer.apply_chat_template(conv.messages, tools=conv.tool_functions, tokenize=False)
    assert "add(a: int, b: int): Return the sum a + b." in prompt


@pytest.mark.parametrize(
    "name",
    ["phrasings_held_out.json", "phrasings_held_out_2.json", "phrasings_held_out_3.json", "phrasings_held_out_4.json"],
)
def test_held_out_phrasings_are_well_formed_and_right(name):
    import re

    from training.evaluate import load_phrasings

    items = load_phrasings(Path(__file__).parents[1] / "training" / name)
    assert len(items) >= 150 and {i["kind"] for i in items} == {"plain", "tool"}
    for item in items:
        numbers = [int(n) for n in re.findall(r"\d+", item["question"])]
        if item["kind"] == "plain" and item["type"] in ("sum", "difference"):
            a, b = numbers[:2]
            assert int(item["answer"]) in (a + b, abs(a - b)), item
        if item["kind"] == "tool" and item["call"] and item["call"]["name"] != "city_facts":
            assert sorted(item["call"]["arguments"].values()) == sorted(numbers[:2]), item


@pytest.fixture(scope="module")
def thinking_figures(chat_model, tokenizer):
    from chatkit.held_out import held_out_thinking_questions
    from training.evaluate import evaluate_thinking

    return evaluate_thinking(chat_model, tokenizer, held_out_thinking_questions(25))


def test_thinking_quality_bars(thinking_figures):
    # The bar: thinking on beats thinking off by 15 points or more on multi-step questions (the
    # card's 200 questions: three numbers 2.5% -> 97.5%, word problems 0% -> 97.5%, follow-ups 10% -> 95%).
    f = thinking_figures
    multi = ("three_numbers", "word_problem", "followup")
    on, off = (
        sum(f[f"{k}_{s}"][0] * f[f"{k}_{s}"][1] for k in multi) / sum(f[f"{k}_{s}"][1] for k in multi)
        for s in ("on", "off")
    )
    assert on >= off + 0.15, f
    assert f["three_numbers_think_tokens"][0] > f["fact_think_tokens"][0]  # sums take working, facts do not
    assert f["fact_on"][0] >= 0.8 and f["fact_off"][0] >= 0.8, f  # thinking costs the facts nothing
    assert f["off_no_block"][0] == 1.0, f  # with thinking off no block is written
    assert f["stops"][0] >= 0.95, f


def test_held_out_phrasings_with_tools_meet_the_bar(chat_model, tokenizer):
    # The target is 90% right calls on phrasings written apart from the generator. The card: 98.3%,
    # 96.7% and 90.0% on the three sets' 60; the third, never read for its misses, is the fair one (plain
    # questions there: 89.3% of 103). A margin for other CPUs' rounding.
    from training.evaluate import evaluate_phrasings, load_phrasings

    third = load_phrasings(Path(__file__).parents[1] / "training" / "phrasings_held_out_3.json")
    figures = evaluate_phrasings(chat_model, tokenizer, [i for i in third if i["kind"] == "tool"])
    assert figures["tool_call"][0] >= 0.85, figures
