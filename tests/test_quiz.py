"""chatkit.quiz: well-formed questions for every notebook, answered with widgets, without them, and as text;
questions that test understanding (the right answer is not the longest choice, nor always at one letter),
and no notebook that gives an answer away."""

import dataclasses
import json
import re
import subprocess
import sys
from collections import Counter

import pytest
from test_package import PACKAGE, _chatkit_imports, _python_without

from chatkit import quiz

COURSE = len(list((PACKAGE.parent / "notebooks").glob("[0-9][0-9]_*.ipynb")))  # one quiz for each notebook
FIRST = quiz.QUIZZES[1][0]  # notebook 1, question 1: the bad-input messages below name its choices
LAST_LETTER = quiz.LETTERS[len(FIRST.choices) - 1]


def test_every_notebook_has_three_to_five_well_formed_questions():
    assert sorted(quiz.QUIZZES) == list(range(1, COURSE + 1))
    for notebook, questions in quiz.QUIZZES.items():
        assert 3 <= len(questions) <= 5, notebook
        for question in questions:
            assert isinstance(question, quiz.Question) and question.text.strip() and question.reason.strip()
            assert 2 <= len(question.choices) <= len(quiz.LETTERS), question.text
            assert all(choice.strip() for choice in question.choices), question.text
            assert len(set(question.choices)) == len(question.choices), question.text
            assert 0 <= question.answer < len(question.choices), question.text
            sections = re.findall(r"§(\d+)\.\d+", question.reason)  # where the notebook shows it: its own
            assert sections and set(sections) == {str(notebook)}, question.reason


def test_questions_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        FIRST.answer = 0


def test_right_answers_by_letter_index_or_text(capsys):
    letter = quiz.LETTERS[FIRST.answer]
    assert quiz.answer(1, 1, letter) is True
    assert quiz.answer(1, 1, letter.upper() + ")") is True  # "B)" as the text form writes it
    assert quiz.answer(1, 1, FIRST.answer) is True
    assert quiz.answer(1, 1, FIRST.choices[FIRST.answer]) is True
    assert capsys.readouterr().out.splitlines() == [f"Right. {FIRST.reason}"] * 4


def test_a_wrong_answer_says_not_quite_and_why(capsys):
    wrong = (FIRST.answer + 1) % len(FIRST.choices)
    assert quiz.answer(1, 1, wrong) is False
    assert quiz.answer(1, 1, FIRST.choices[wrong]) is False
    assert capsys.readouterr().out.splitlines() == [f"Not quite. {FIRST.reason}"] * 2


CHOICES = (
    f"question 1 of notebook 1 has choices a–{LAST_LETTER} (or 0–{len(FIRST.choices) - 1}, or a choice's exact text)"
)


@pytest.mark.parametrize(
    "args, message",
    [
        (
            (COURSE + 1, 1, "a"),
            f"no quiz for notebook {COURSE + 1}: there are quizzes for notebooks 1–{COURSE}",
        ),
        ((0, 1, "a"), "no quiz for notebook 0"),
        (("3", 1, "a"), "no quiz for notebook '3'"),
        ((True, 1, "a"), "no quiz for notebook True"),
        ((1, 0, "a"), f"notebook 1's quiz has questions 1–{len(quiz.QUIZZES[1])}; got 0"),
        ((1, len(quiz.QUIZZES[1]) + 1, "a"), f"notebook 1's quiz has questions 1–{len(quiz.QUIZZES[1])}"),
        ((1, "1", "a"), "notebook 1's quiz has questions"),
        ((1, 1, "z"), f"{CHOICES}; got 'z'"),
        ((1, 1, len(FIRST.choices)), f"{CHOICES}; got {len(FIRST.choices)}"),
        ((1, 1, -1), f"{CHOICES}; got -1"),
        ((1, 1, True), f"{CHOICES}; got True"),
        ((1, 1, FIRST.choices[0].upper()), CHOICES),  # the text must be exact
    ],
)
def test_bad_input_says_what_was_wrong_and_what_is_valid(args, message, capsys):
    with pytest.raises(ValueError, match=re.escape(message)):
        quiz.answer(*args)
    assert capsys.readouterr().out == ""


def test_show_refuses_a_notebook_without_a_quiz():
    with pytest.raises(ValueError, match=f"there are quizzes for notebooks 1–{COURSE}"):
        quiz.show(42)


def test_the_text_lists_every_question_and_choice_and_holds_no_ids():
    for notebook, questions in quiz.QUIZZES.items():
        shown = quiz.show(notebook)
        text = repr(shown)
        assert text == str(shown) == quiz.quiz_text(notebook) == repr(quiz.show(notebook))
        assert not re.search(r"0x[0-9a-f]{6,}|[0-9a-f]{32}", text)  # no object addresses, no model ids
        assert all(len(line) <= 100 for line in text.splitlines())
        flat = " ".join(text.split())  # long lines are wrapped
        for number, question in enumerate(questions, 1):
            assert f"\n{number}. " in text
            assert " ".join(question.text.split()) in flat
            for letter, choice in zip(quiz.LETTERS, question.choices):
                assert f"{letter}) {' '.join(choice.split())}" in flat
        assert f"chatkit.quiz.answer({notebook}, 1, " in text  # how to answer without widgets


def test_html_escapes_and_marks_code():
    assert quiz._html("`<|im_end|>` & <b>") == "<code>&lt;|im_end|&gt;</code> &amp; &lt;b&gt;"


# --------------------------------------------------------------------------------------------- widgets
def test_check_says_right_or_not_quite_with_the_reason():
    pytest.importorskip("ipywidgets")
    shown = quiz.show(2)
    questions = quiz.QUIZZES[2]
    assert "ui" not in vars(shown)  # the widgets are built on first use
    assert list(shown.ui.children) == [view.box for view in shown.views]
    assert len(shown.views) == len(questions)
    for number, (view, question) in enumerate(zip(shown.views, questions), 1):
        assert view.prompt.value.startswith(f"<b>{number}.</b> ")
        assert view.choices.value is None and view.choices.index is None  # nothing chosen at first
        assert view.check.description == "Check" and view.feedback.value == ""

    first, second, third = shown.views[:3]
    first.check.click()  # nothing chosen yet
    assert "Choose an answer first" in first.feedback.value
    first.choices.value = questions[0].answer
    first.check.click()
    assert first.feedback.value == f"<b>Right.</b> {quiz._html(questions[0].reason)}"
    second.choices.index = (questions[1].answer + 1) % len(questions[1].choices)  # a click on a wrong choice
    second.check.click()
    assert second.feedback.value == f"<b>Not quite.</b> {quiz._html(questions[1].reason)}"
    assert third.feedback.value == ""  # each question answers on its own
    assert repr(shown) == quiz.quiz_text(2)  # the widgets change nothing in the text


def test_the_choices_are_lettered_like_the_text():
    pytest.importorskip("ipywidgets")
    shown = quiz.show(3)
    shown.ui
    labels = [label for label, _ in shown.views[0].choices.options]
    assert labels == [f"{letter}) {choice}" for letter, choice in zip(quiz.LETTERS, quiz.QUIZZES[3][0].choices)]


def test_display_shows_the_widgets_with_the_text_as_plain_text():
    pytest.importorskip("ipywidgets")
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.display import display
    from IPython.utils.capture import capture_output

    InteractiveShell.instance()
    shown = quiz.show(5)
    with capture_output() as captured:
        display(shown)  # what ending a cell with it does
    bundle = captured.outputs[0].data
    assert bundle[quiz.WIDGET_VIEW]["model_id"] == shown.ui.model_id
    assert bundle["text/plain"] == quiz.quiz_text(5)


def test_display_with_ipywidgets_7_sends_the_same_bundle(monkeypatch):
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    shown_callbacks = []

    class Version7Box:  # ipywidgets 7 widgets have no _repr_mimebundle_; display runs on_displayed callbacks
        model_id = "abc"

        def _handle_displayed(self):
            shown_callbacks.append(True)

    shown = quiz.show(6)
    monkeypatch.setattr(shown, "ui", Version7Box())  # `ui` is a cached property: the instance's value wins
    InteractiveShell.instance()
    with capture_output() as captured:
        shown._ipython_display_()
    view = {"version_major": 2, "version_minor": 0, "model_id": "abc"}
    assert captured.outputs[0].data == {"text/plain": quiz.quiz_text(6), quiz.WIDGET_VIEW: view}
    assert shown_callbacks == [True]


# ------------------------------------------------------------------------------------ light and alone
def test_show_and_answer_work_without_ipywidgets():
    result = _python_without(
        "ipywidgets",
        (
            "from IPython.core.interactiveshell import InteractiveShell\n"
            "from IPython.display import display\n"
            "from IPython.utils.capture import capture_output\n"
            "from chatkit import quiz\n"
            "InteractiveShell.instance()\n"
            "with capture_output() as captured:\n"
            "    display(quiz.show(4))\n"
            "assert [o.data for o in captured.outputs] == [{'text/plain': quiz.quiz_text(4)}], captured.outputs\n"
            "print(quiz.answer(4, 1, quiz.QUIZZES[4][0].answer))\n"
        ),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "True"


def test_the_module_is_light_and_imports_no_other_chatkit_module():
    assert _chatkit_imports(PACKAGE / "quiz.py") == []
    code = "import sys, chatkit.quiz\nprint(sorted(m for m in ('IPython', 'ipywidgets') if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=PACKAGE.parent
    )
    assert result.stdout.strip() == "[]", result.stderr


# ------------------------------------------------------------------------------ the data and its balance
ROOT = PACKAGE.parent
QUESTIONS = [question for questions in quiz.QUIZZES.values() for question in questions]


def _is_longest(question):
    """The right choice is at least as long as every other: what a learner who picks the longest finds."""
    return len(question.choices[question.answer]) == max(map(len, question.choices))


def _is_shortest(question):
    return len(question.choices[question.answer]) == min(map(len, question.choices))


def test_the_questions_come_from_the_data_file_by_notebook_number(tmp_path):
    assert quiz.QUIZZES == quiz.load_quizzes(quiz.DATA_FILE)
    assert quiz.DATA_FILE.parent.name == "data" and quiz.DATA_FILE.parent.parent == PACKAGE
    later = {"quizzes": {"9": [{"question": "Q?", "choices": ["x", "y", "z"], "answer": "c", "reason": "§9.1."}]}}
    (tmp_path / "quizzes.json").write_text(json.dumps(later), encoding="utf-8")
    assert quiz.load_quizzes(tmp_path / "quizzes.json") == {9: (quiz.Question("Q?", ("x", "y", "z"), 2, "§9.1."),)}
    later["quizzes"]["9"][0]["answer"] = "d"
    (tmp_path / "quizzes.json").write_text(json.dumps(later), encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape("quizzes.json, notebook 9, question 1: its answer 'd' is not")):
        quiz.load_quizzes(tmp_path / "quizzes.json")


def test_a_quiz_for_a_new_notebook_needs_only_its_entry(monkeypatch):
    question = quiz.Question("What does notebook 99 teach?", ("This", "That", "Both"), 2, "§99.1: both.")
    monkeypatch.setitem(quiz.QUIZZES, 99, (question,))
    assert "Quiz on notebook 99: 1 questions" in repr(quiz.show(99))
    assert quiz.answer(99, 1, "c") is True
    monkeypatch.delitem(quiz.QUIZZES, 8)
    with pytest.raises(ValueError, match="there are quizzes for notebooks 1, 2, 3, 4, 5, 6, 7, 9"):
        quiz.show(8)


def test_the_right_answer_is_seldom_the_longest_or_the_shortest_choice():
    longest = sum(map(_is_longest, QUESTIONS))
    shortest = sum(map(_is_shortest, QUESTIONS))
    assert longest <= 0.4 * len(QUESTIONS), f"{longest} of {len(QUESTIONS)} right answers are the longest choice"
    assert shortest <= 0.4 * len(QUESTIONS), f"{shortest} of {len(QUESTIONS)} right answers are the shortest choice"


def test_the_choices_of_a_question_have_similar_lengths():
    uneven = [q.text for q in QUESTIONS if max(map(len, q.choices)) > 2 * min(map(len, q.choices))]
    assert uneven == []


def test_the_right_answers_are_spread_over_the_letters():
    for notebook, questions in quiz.QUIZZES.items():
        letters = {question.answer for question in questions}
        assert len(letters) > 1, f"every right answer of quiz {notebook} is {quiz.LETTERS[letters.pop()]})"
    counts = Counter(quiz.LETTERS[question.answer] for question in QUESTIONS)
    assert max(counts.values()) <= 0.4 * len(QUESTIONS), counts
    assert all(counts[letter] >= 0.2 * len(QUESTIONS) for letter in "abc"), counts


# ------------------------------------------------------------------ no text gives an answer away
ANSWER_CALL = re.compile(r"""quiz\.answer\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(?:["']([^"']*)["']|(\d+))\s*\)""")


def named_right_answers(text):
    """Each `quiz.answer(N, Q, "x")` (or an index) in `text` whose choice is question Q's right answer."""
    named = []
    for match in ANSWER_CALL.finditer(text):
        notebook, number, letter, index = match.groups()
        questions = quiz.QUIZZES.get(int(notebook), ())
        if not 1 <= int(number) <= len(questions):
            continue
        question = questions[int(number) - 1]
        try:
            chosen = quiz._choice_index(question, letter if index is None else int(index), "")
        except ValueError:  # a placeholder such as "your letter": no choice at all
            continue
        if chosen == question.answer:
            named.append(match.group())
    return named


def _texts_of(path, part):
    """A notebook's text as a learner reads it: its markdown and code "sources", or its "outputs"."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        if part == "sources":
            yield "".join(cell["source"])
        else:
            for output in cell.get("outputs", []):
                yield "".join(output.get("text", "")) + "".join(output.get("data", {}).get("text/plain", ""))


def test_the_answer_finder_finds_a_right_answer_and_only_that():
    first = quiz.QUIZZES[1][0]
    letter, wrong = quiz.LETTERS[first.answer], quiz.LETTERS[(first.answer + 1) % len(first.choices)]
    assert named_right_answers(f'try `quiz.answer(1, 1, "{letter}")`') == [f'quiz.answer(1, 1, "{letter}")']
    assert named_right_answers(f"chatkit.quiz.answer(1, 1, '{letter.upper()})')") != []
    assert named_right_answers(f"quiz.answer(1, 1, {first.answer})") == [f"quiz.answer(1, 1, {first.answer})"]
    for text in (
        f'quiz.answer(1, 1, "{wrong}")',
        'quiz.answer(1, 1, "your letter")',
        'quiz.answer(1, question, "b")',
        f'quiz.answer(42, 1, "{letter}")',
        f'quiz.answer(1, 99, "{letter}")',
    ):
        assert named_right_answers(text) == [], text


NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "solutions").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_no_notebook_names_a_right_answer(path):
    assert [named for text in _texts_of(path, "sources") for named in named_right_answers(text)] == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_no_committed_output_names_a_right_answer(path):
    """The outputs too (a quiz's text ends with how to answer it). Fails until a notebook whose quiz changed
    is executed again."""
    assert [named for text in _texts_of(path, "outputs") for named in named_right_answers(text)] == []


def test_no_quiz_text_or_guide_names_a_right_answer():
    texts = [quiz.quiz_text(notebook) for notebook in quiz.QUIZZES] + [quiz.__doc__]
    texts += [
        path.read_text(encoding="utf-8")
        for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
        if path.is_file()
    ]
    assert [named for text in texts for named in named_right_answers(text)] == []
