"""Checking an exercise: the verdict a learner sees, and the pattern every check is written in.

A check is a function decorated with `@check`. Its body says what a right answer has, one
`need(condition, hint)` at a time, and returns what it confirmed. The learner sees a `Verdict`:

- "Right: <what the check confirmed>";
- "Not yet: <the hint of the first unmet need>", a hint that points at an idea, not the answer;
- "Not answered yet: ..." while an answer is still the notebook's placeholder, so the check does not
  run and nothing raises: the notebooks run top to bottom with their exercises open.

The placeholder is `...`, as a value or as the whole body of a function (a docstring may stay), or of
one method of a class. A function defined where its source cannot be read (`exec` of a string) is
checked as it is. This module knows nothing of the exercises themselves: `chatkit.exercises` holds one
check per exercise.

Example:
    >>> @check
    ... def even(number):
    ...     need(isinstance(number, int), "a whole number")
    ...     need(number % 2 == 0, "what is left when you divide it by 2?")
    ...     return f"{number} is even"
    >>> even(4), even(3), even(...)
    (Right: 4 is even, Not yet: what is left when you divide it by 2?, Not answered yet: replace each \
`...` with your answer, then run this cell again)
"""

import ast
import functools
import inspect
import textwrap

NOT_ANSWERED = "replace each `...` with your answer, then run this cell again"


class Verdict:
    """A check's answer, true when right: "Right: ...", "Not yet: <a hint>" or "Not answered yet: ..."."""

    def __init__(self, right, message):
        self.right, self.message = right, message  # right is None when there was no answer

    def __bool__(self):
        return bool(self.right)

    def __repr__(self):
        return f"{ {True: 'Right', False: 'Not yet', None: 'Not answered yet'}[self.right] }: {self.message}"


class NotYet(Exception):
    """Raised inside a check to end it with "Not yet" and this hint."""


def need(condition, hint):
    """Go on when `condition` holds; otherwise the check ends with "Not yet: <hint>"."""
    if not condition:
        raise NotYet(hint)


def _placeholder_body(function):
    """True when `function` is `def f(...): ...`: its body only `...`, after a docstring if any."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):  # no source to read (exec, a builtin), or a lambda mid-line
        return False
    definition = tree.body[0] if tree.body else None
    if not isinstance(definition, (ast.FunctionDef, ast.AsyncFunctionDef)) or definition.name != function.__name__:
        return False
    body = definition.body
    if len(body) == 2 and ast.get_docstring(definition) is not None:
        body = body[1:]
    return (
        len(body) == 1
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and body[0].value.value is Ellipsis
    )


def unanswered(value):
    """True for the notebooks' placeholder: `...` itself, a function whose body is only `...`, or a class
    with such a method (its own, not inherited)."""
    if inspect.isclass(value):
        return any(inspect.isfunction(member) and _placeholder_body(member) for member in vars(value).values())
    return value is Ellipsis or (inspect.isfunction(value) and _placeholder_body(value))


def check(function):
    """A check: an unanswered argument gives "Not answered yet"; a failed `need` gives its hint."""

    @functools.wraps(function)
    def checked(*args, **kwargs):
        if any(unanswered(value) for value in (*args, *kwargs.values())):
            return Verdict(None, NOT_ANSWERED)
        try:
            return Verdict(True, function(*args, **kwargs))
        except NotYet as hint:
            return Verdict(False, str(hint))

    return checked


def call_answer(function, *args):
    """The learner's function called on one case; an error it raises becomes the hint."""
    need(callable(function), "pass the function itself (its name, without calling it)")
    try:
        return function(*args)
    except Exception as error:  # the learner's code: any error is feedback, not a crash
        raise NotYet(f"your function raised {type(error).__name__}: {error}") from None


def close(value, expected, tolerance):
    """Is `value` a number within `tolerance` (a fraction) of `expected`?"""
    return isinstance(value, (int, float)) and abs(value - expected) <= tolerance * abs(expected)


def token_ids(value):
    """A list of token ids from a list, a one-row tensor or list of lists, or a dict with input_ids."""
    if hasattr(value, "keys") and "input_ids" in value:
        value = value["input_ids"]
    if hasattr(value, "tolist"):
        value = value.tolist()
    need(isinstance(value, list) and value, "pass token ids: a list, a tensor or the tokenizer's output")
    if isinstance(value[0], list):
        need(len(value) == 1, "pass the ids of one chat, not a batch")
        value = value[0]
    return [int(i) for i in value]
