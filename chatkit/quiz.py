"""Quizzes: a few multiple-choice questions on each notebook's ideas, with the reason after each answer.

    chatkit.quiz.show(3)             # a cell's last line: the quiz as widgets (as text without ipywidgets)
    chatkit.quiz.answer(3, 1, "a")   # without widgets: prints "Right." or "Not quite." and the reason

The questions live in `chatkit/data/quizzes.json`, by notebook number: a quiz for a new notebook is a new
entry there, and this module only shows and checks them. Each reason names the notebook's section that
shows the idea. Offline; ipywidgets and IPython are imported only to display a quiz. Its text (repr, and
the `text/plain` that GitHub shows and nbval compares) has no ids. `display_widget(ui, text)`, a widget
shown with such a text form, is also how `chatkit.widgets.ChatWidget` displays itself.
"""

import html
import json
import re
import textwrap
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"  # the MIME type of a widget's view
LETTERS = "abcdefghij"
DATA_FILE = Path(__file__).parent / "data" / "quizzes.json"


@dataclass(frozen=True)
class Question:
    """One question: `choices[answer]` is right; `reason` says why, and in which section it is shown."""

    text: str
    choices: tuple
    answer: int
    reason: str


def _question(entry, where):
    """A Question from one entry of the quiz file, whose "answer" is a letter; a ValueError says where."""
    choices = tuple(entry["choices"])
    if entry["answer"] not in LETTERS[: len(choices)]:
        raise ValueError(
            f"{where}: its answer {entry['answer']!r} is not the letter of one of its "
            f"{len(choices)} choices (a–{LETTERS[len(choices) - 1]})"
        )
    return Question(entry["question"], choices, LETTERS.index(entry["answer"]), entry["reason"])


def load_quizzes(path=DATA_FILE):
    """{notebook number: (Question, ...)} from a quiz file laid out as `chatkit/data/quizzes.json` is."""
    quizzes = json.loads(Path(path).read_text(encoding="utf-8"))["quizzes"]
    return {
        int(number): tuple(
            _question(entry, f"{Path(path).name}, notebook {number}, question {index}")
            for index, entry in enumerate(entries, 1)
        )
        for number, entries in sorted(quizzes.items(), key=lambda item: int(item[0]))
    }


QUIZZES = load_quizzes()


def _notebooks_with_a_quiz():
    numbers = sorted(QUIZZES)
    if numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"{numbers[0]}–{numbers[-1]}"
    return ", ".join(map(str, numbers))


def _quiz(notebook):
    if isinstance(notebook, bool) or not isinstance(notebook, int) or notebook not in QUIZZES:
        raise ValueError(
            f"no quiz for notebook {notebook!r}: there are quizzes for notebooks {_notebooks_with_a_quiz()}"
        )
    return QUIZZES[notebook]


def _choice_index(question, choice, where):
    """The index of `choice` (a letter, an index from 0, or a choice's exact text), else a ValueError."""
    n = len(question.choices)
    if isinstance(choice, int) and not isinstance(choice, bool) and 0 <= choice < n:
        return choice
    if isinstance(choice, str):
        letter = choice.strip().lower().rstrip(")")
        if len(letter) == 1 and letter in LETTERS[:n]:
            return LETTERS.index(letter)
        if choice in question.choices:
            return question.choices.index(choice)
    raise ValueError(f"{where} has choices a–{LETTERS[n - 1]} (or 0–{n - 1}, or a choice's exact text); got {choice!r}")


def _html(text):
    """Escaped (the texts hold things like `<|im_end|>`), with `code` spans as <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def quiz_text(notebook):
    """The quiz as plain text: numbered questions, lettered choices, and how to answer without widgets."""
    questions = _quiz(notebook)
    lines = [f"Quiz on notebook {notebook:02d}: {len(questions)} questions", ""]
    wrap = dict(width=100, break_long_words=False, break_on_hyphens=False)
    for number, question in enumerate(questions, 1):
        lines += textwrap.wrap(f"{number}. {question.text}", subsequent_indent="   ", **wrap)
        for letter, choice in zip(LETTERS, question.choices):
            lines += textwrap.wrap(f"{letter}) {choice}", initial_indent="   ", subsequent_indent="      ", **wrap)
        lines.append("")
    lines.append(
        f'Without widgets: chatkit.quiz.answer({notebook}, 1, "your letter") checks your answer to question 1.'
    )
    return "\n".join(lines)


class _QuestionView:
    """One question's widgets: the question, its choices (none chosen), a Check button and the feedback."""

    def __init__(self, widgets, number, question):
        self.question = question
        self.prompt = widgets.HTML(f"<b>{number}.</b> {_html(question.text)}")
        options = [(f"{letter}) {choice}", i) for i, (letter, choice) in enumerate(zip(LETTERS, question.choices))]
        # value=None: nothing chosen (ipywidgets 7 and 8 would otherwise select the first choice)
        self.choices = widgets.RadioButtons(options=options, value=None, layout=widgets.Layout(width="auto"))
        self.check = widgets.Button(description="Check")
        self.feedback = widgets.HTML()
        self.check.on_click(self._check)
        self.box = widgets.VBox([self.prompt, self.choices, self.check, self.feedback])

    def _check(self, _button):
        if self.choices.value is None:
            self.feedback.value = "<i>Choose an answer first.</i>"
        else:
            verdict = "Right." if self.choices.value == self.question.answer else "Not quite."
            self.feedback.value = f"<b>{verdict}</b> {_html(self.question.reason)}"


def display_widget(ui, text, html=None):
    """Display the widget `ui` with `text` as its `text/plain`; `text` alone when `ui` is None (no ipywidgets).

    What a quiz and `chatkit.widgets.ChatWidget` run when a cell ends with them: the view's model id is
    random, so the text is what nbval compares, and `html` (when given) is the static picture GitHub and
    nbviewer show in place of the live widget. Works with ipywidgets 8 and 7 (Colab's).
    """
    from IPython.display import display

    if ui is None:
        display({"text/plain": text, **({"text/html": html} if html else {})}, raw=True)
        return
    bundle = getattr(ui, "_repr_mimebundle_", None)
    if bundle is not None:  # ipywidgets 8
        data = bundle()
    else:  # ipywidgets 7: the bundle its own _ipython_display_ sends, built the same way
        data = {WIDGET_VIEW: {"version_major": 2, "version_minor": 0, "model_id": ui.model_id}}
    data["text/plain"] = text
    if html:
        data["text/html"] = html
    display(data, raw=True)
    if bundle is None:
        ui._handle_displayed()  # ipywidgets 7 runs its on_displayed callbacks here


class Quiz:
    """A notebook's quiz: widgets when displayed in a notebook, text everywhere else (repr, str, GitHub)."""

    def __init__(self, notebook):
        self.notebook = notebook
        self.questions = _quiz(notebook)

    @cached_property
    def ui(self):
        """The quiz's widgets, built on first use (ipywidgets is imported only then); `views` holds their parts."""
        import ipywidgets as widgets

        self.views = [_QuestionView(widgets, n, q) for n, q in enumerate(self.questions, 1)]
        return widgets.VBox([view.box for view in self.views])

    def __repr__(self):
        return quiz_text(self.notebook)

    __str__ = __repr__

    def _ipython_display_(self):
        """Show the widgets, with the quiz's text as `text/plain` (the view's model id is random)."""
        try:
            ui = self.ui
        except ImportError:  # no ipywidgets: the text alone, which says how to answer with `answer()`
            ui = None
        display_widget(ui, repr(self))


def show(notebook):
    """The quiz on notebook `notebook` (a number with a quiz in the data file): make it a cell's last line."""
    return Quiz(notebook)


def answer(notebook, question, choice):
    """Check an answer without widgets: print "Right." or "Not quite." and the reason; True if right.

    `question` counts from 1; `choice` is a letter ("b"), an index from 0, or the exact text of a choice.
    """
    questions = _quiz(notebook)
    if isinstance(question, bool) or not isinstance(question, int) or not 1 <= question <= len(questions):
        raise ValueError(f"notebook {notebook}'s quiz has questions 1–{len(questions)}; got {question!r}")
    asked = questions[question - 1]
    right = _choice_index(asked, choice, f"question {question} of notebook {notebook}") == asked.answer
    print("Right." if right else "Not quite.", asked.reason)
    return right
