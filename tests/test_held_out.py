"""chatkit.held_out: the shipped held-out chats and questions, and the correctness check."""

import importlib.util
from pathlib import Path

import pytest

import chatkit
from chatkit import held_out

ROOT = Path(__file__).parent.parent


def test_the_shipped_file_is_what_the_corpus_generator_writes():
    spec = importlib.util.spec_from_file_location("build_held_out", ROOT / "scripts" / "build_held_out.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    assert held_out.DATA_FILE.read_text(encoding="utf-8") == build.text()


def test_chats_and_questions_are_valid_and_not_shared_between_calls():
    chats = held_out.held_out_chats(8)
    for chat in chats:
        chatkit.validate_chat(chat)
        assert chat[-1]["role"] == "assistant"
    chats[0].clear()
    assert held_out.held_out_chats(1)[0]  # a copy was changed, not the data
    questions = held_out.held_out_questions(48)
    assert len(questions) == 48 and {q["category"] for q in questions} >= {"arithmetic"}
    for question in questions:
        chatkit.validate_chat(question["chat"])
        assert question["chat"][-1]["role"] == "user" and question["answer"]
    assert "seeds training does not use" in held_out.held_out_source()


@pytest.mark.parametrize("n", [0, -1, 2.5, True, 10**6])
def test_bad_counts_say_what_is_allowed(n):
    with pytest.raises(ValueError, match="n must be|at most"):
        held_out.held_out_chats(n)


@pytest.mark.parametrize(
    "answer, category, reply, right",
    [
        ("85", "arithmetic", "7 + 8 = 15 and 30 + 40 + 10 = 80, so 37 + 48 = 85.", True),
        ("85", "arithmetic", "37 + 48 = 84.", False),
        ("85", "arithmetic", "85 is not it: 37 + 48 = 86.", False),
        ("8", "facts", "A spider has 8 legs.", True),
        ("8", "facts", "A spider has 18 legs.", False),
        ("Paris", "cities", "The capital of France is paris.", True),
        ("Paris", "cities", "The capital of France is Rome.", False),
    ],
)
def test_answer_check(answer, category, reply, right):
    assert held_out.answer_is_correct(answer, category, reply) is right
