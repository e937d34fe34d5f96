"""chatkit.checking: the verdicts, the need/check pattern, and what counts as an answer left open."""

import pytest

from chatkit import checking
from chatkit.checking import NOT_ANSWERED, call_answer, check, need


@check
def positive(number):
    need(isinstance(number, (int, float)), "give a number")
    need(number > 0, "above zero")
    return f"{number} is positive"


def test_a_check_says_right_not_yet_or_not_answered_yet():
    assert repr(positive(3)) == "Right: 3 is positive" and positive(3)
    assert repr(positive(-1)) == "Not yet: above zero" and not positive(-1)
    assert repr(positive("3")) == "Not yet: give a number"  # the first unmet need gives the hint
    assert repr(positive(...)) == f"Not answered yet: {NOT_ANSWERED}" and not positive(...)
    assert positive(-1).right is False and positive(...).right is None
    assert positive.__wrapped__.__name__ == "positive"  # how the notebooks' test finds every check


@check
def takes_a_function(function):
    return f"got {call_answer(function, 2)!r}"


def placeholder(x): ...


def documented_placeholder(x):
    """What the learner should write."""
    ...


async def async_placeholder(x): ...


def placeholder_with_a_comment(x):
    # the learner's notes
    ...


def passes(x):
    pass


def returns_ellipsis(x):
    return ...


def docstring_only(x):
    """Nothing else."""


def two_statements(x):
    ...
    return x


@pytest.mark.parametrize(
    "function", [placeholder, documented_placeholder, async_placeholder, placeholder_with_a_comment]
)
def test_a_function_whose_body_is_only_the_placeholder_is_not_answered(function):
    assert checking.unanswered(function)
    assert repr(takes_a_function(function)) == f"Not answered yet: {NOT_ANSWERED}"


@pytest.mark.parametrize(
    "function", [passes, returns_ellipsis, docstring_only, two_statements, lambda x: ..., print, len]
)
def test_any_other_body_is_an_answer_and_is_checked(function):
    assert not checking.unanswered(function)
    assert repr(takes_a_function(function)).startswith(("Right: ", "Not yet: "))


class PlaceholderMethod:  # a class to complete: one of its methods is still the placeholder
    def __init__(self, event):
        self.event = event

    def __call__(self, input_ids, scores, **kwargs): ...  # True once self.event is set


class DocumentedPlaceholderMethod:
    @staticmethod
    def helper():
        return 1

    def __call__(self, x):
        """What the learner should write."""
        ...


class CompletedMethods(PlaceholderMethod):  # the placeholder is inherited, not its own: it overrides it
    def __call__(self, input_ids, scores, **kwargs):
        return self.event.is_set()


class InheritsOnly(PlaceholderMethod):
    pass


class ReturnsEllipsis:
    def __call__(self, x):
        return ...


@check
def takes_a_class(cls):
    return f"got {cls.__name__}"


@pytest.mark.parametrize("cls", [PlaceholderMethod, DocumentedPlaceholderMethod])
def test_a_class_with_a_method_whose_body_is_only_the_placeholder_is_not_answered(cls):
    assert checking.unanswered(cls)
    assert repr(takes_a_class(cls)) == f"Not answered yet: {NOT_ANSWERED}"


@pytest.mark.parametrize("cls", [CompletedMethods, InheritsOnly, ReturnsEllipsis, int])
def test_a_class_whose_own_methods_have_bodies_is_checked(cls):
    assert not checking.unanswered(cls)
    assert repr(takes_a_class(cls)) == f"Right: got {cls.__name__}"
    assert not checking.unanswered(PlaceholderMethod(None))  # an instance is a value, checked as it is


def test_a_class_without_readable_source_is_checked_as_it_is():
    namespace = {}
    exec("class Typed:\n    def __call__(self, x):\n        ...\n", namespace)
    assert not checking.unanswered(namespace["Typed"])


def test_a_function_without_readable_source_is_checked_as_it_is():
    namespace = {}
    exec("def typed_in_a_string(x):\n    ...\n", namespace)  # no file: its source cannot be read
    assert not checking.unanswered(namespace["typed_in_a_string"])
    assert repr(takes_a_function(namespace["typed_in_a_string"])) == "Right: got None"


def test_the_learners_errors_become_hints_and_keyword_placeholders_count():
    def raises(x):
        raise KeyError("content")

    assert repr(takes_a_function(raises)) == "Not yet: your function raised KeyError: 'content'"
    assert repr(takes_a_function("raises")) == "Not yet: pass the function itself (its name, without calling it)"
    assert repr(takes_a_function(function=placeholder)) == f"Not answered yet: {NOT_ANSWERED}"
