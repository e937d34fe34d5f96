"""Tests for chatkit.thinking: the thinking budget, the timed reply, and the held-out thinking questions."""

import pytest
import torch
from transformers import LogitsProcessorList

import chatkit
from chatkit import held_out, thinking

QUESTION = [{"role": "user", "content": "Ana has 37 apples and buys 48 more. Then she gives away 20. How many now?"}]


def _prompt_ids(tokenizer, chat=QUESTION):
    return tokenizer.apply_chat_template(
        chat, add_generation_prompt=True, enable_thinking=True, return_dict=True, return_tensors="pt"
    )["input_ids"]


@pytest.mark.parametrize("budget", [0, 3])
def test_budget_forces_the_closing_text_after_budget_tokens(chat_model, budget):
    model, tokenizer = chat_model
    ids = _prompt_ids(tokenizer)
    capped = LogitsProcessorList([thinking.ThinkingBudget(tokenizer, ids.shape[1], budget)])
    out = model.generate(ids, max_new_tokens=budget + 12, do_sample=False, logits_processor=capped)
    new = out[0, ids.shape[1] :].tolist()
    close = tokenizer(thinking.THINK_CLOSE, add_special_tokens=False).input_ids
    closed_early = "</think>" in tokenizer.decode(new[:budget])
    assert closed_early or new[budget : budget + len(close)] == close


def test_budget_leaves_a_thought_that_closed_by_itself_alone(chat_model):
    _, tokenizer = chat_model
    prompt = _prompt_ids(tokenizer)
    closed = tokenizer("7 + 8 = 15\n</think>\n\n85", add_special_tokens=False, return_tensors="pt").input_ids
    ids = torch.cat([prompt, closed], dim=1)
    budget = thinking.ThinkingBudget(tokenizer, prompt.shape[1], closed.shape[1] - 2)
    scores = torch.zeros(1, len(tokenizer))
    assert torch.equal(budget(ids, scores.clone()), scores)


def test_budget_must_be_a_whole_number(chat_model):
    with pytest.raises(ValueError, match="budget must be a whole number"):
        thinking.ThinkingBudget(chat_model[1], 10, -1)


def test_timed_reply_with_thinking_off_is_the_plain_reply(chat_model):
    model, tokenizer = chat_model
    chat = [{"role": "user", "content": "What is the capital of France?"}]
    run = thinking.timed_reply(model, tokenizer, chat, enable_thinking=False, max_new_tokens=32)
    assert run.content == chatkit.reply(model, tokenizer, chat, max_new_tokens=32)
    assert run.thought_tokens == 0 and run.thinking == ""
    assert 0 < run.seconds_to_answer <= run.seconds and run.tokens > 0


def test_timed_reply_counts_a_thought_cut_by_its_budget(chat_model):
    model, tokenizer = chat_model
    capped = LogitsProcessorList([thinking.ThinkingBudget(tokenizer, _prompt_ids(tokenizer).shape[1], 4)])
    run = thinking.timed_reply(model, tokenizer, QUESTION, True, max_new_tokens=40, logits_processor=capped)
    assert run.thought_tokens <= 4 + len(tokenizer("\n", add_special_tokens=False).input_ids)


def test_response_template_is_the_tokenizers_own_else_the_embedded_one(chat_model):
    _, tokenizer = chat_model
    assert thinking.response_template(tokenizer) is chatkit.tools.EMBEDDED_RESPONSE_TEMPLATE

    class Own:
        response_template = {"fields": {}}

    assert thinking.response_template(Own()) is Own.response_template


def test_parse_response_reads_the_thought_back(chat_model):
    _, tokenizer = chat_model
    prompt = tokenizer.apply_chat_template(QUESTION, add_generation_prompt=True, tokenize=False, enable_thinking=True)
    raw = "Ana starts with 37.\n37 + 48: ..., so 85.\n</think>\n\nAna has 65 apples now.<|im_end|>"
    message = tokenizer.parse_response(raw, schema=thinking.response_template(tokenizer), prefix=prompt)
    assert message == {
        "role": "assistant",
        "thinking": "Ana starts with 37.\n37 + 48: ..., so 85.",
        "content": "Ana has 65 apples now.",
    }


def test_held_out_thinking_questions_take_turns_by_kind():
    questions = held_out.held_out_thinking_questions(10)
    assert [q["kind"] for q in questions[:5]] == ["two_numbers", "three_numbers", "word_problem", "followup", "fact"]
    assert all(held_out.is_correct(q, f"So it is {q['answer']}.") for q in questions)
    with pytest.raises(ValueError, match="at most"):
        held_out.held_out_thinking_questions(10_000)
