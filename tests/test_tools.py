"""chatkit.tools: the example tools, reading a reply's tool calls, running them, and the bounded loop."""

import functools
import inspect
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers.utils import get_json_schema

from chatkit import tools, validate_chat
from chatkit.tools import (
    EMBEDDED_RESPONSE_TEMPLATE,
    EMBEDDED_TOOLS,
    ToolLoopError,
    call_tool,
    city_facts,
    multiply,
    parse_reply,
    run_tools,
)

FUNCTIONS = {tool.__name__: tool for tool in EMBEDDED_TOOLS}


def test_each_example_tool_has_a_complete_schema():
    for tool in EMBEDDED_TOOLS:
        schema = get_json_schema(tool)["function"]
        assert schema["description"] and set(schema["parameters"]["required"]) == set(
            schema["parameters"]["properties"]
        )
        assert all(p.get("description") for p in schema["parameters"]["properties"].values())


def test_city_facts_knows_its_cities_and_says_which_it_does_not():
    assert city_facts("Tokyo") == {
        "city": "Tokyo",
        "country": "Japan",
        "things_to_do": ["cross the Shibuya Crossing", "visit the Senso-ji temple"],
    }
    with pytest.raises(ValueError, match="no facts about Lisbon"):
        city_facts("Lisbon")


@pytest.mark.parametrize(
    "call, expected",
    [
        ({"type": "function", "function": {"name": "multiply", "arguments": {"a": 12, "b": 7}}}, "84"),
        ({"name": "add", "arguments": '{"a": 2, "b": 3}'}, "5"),  # flat, with OpenAI's JSON-string arguments
        (
            {"function": {"name": "city_facts", "arguments": {"city": "Cairo"}}},
            json.dumps(city_facts("Cairo"), ensure_ascii=False),
        ),
    ],
)
def test_call_tool_runs_the_named_function(call, expected):
    assert call_tool(FUNCTIONS, call) == expected


@pytest.mark.parametrize(
    "call, message",
    [
        ({"name": "divide", "arguments": {"a": 1, "b": 2}}, "unknown tool 'divide'; the tools are add, subtract"),
        ({"name": "add", "arguments": '{"a": 1, '}, "the arguments are not valid JSON"),
        ({"name": "add", "arguments": "[1, 2]"}, "the arguments must be a JSON object"),
        ({"name": "add", "arguments": {"a": 1, "c": 2}}, "unexpected keyword argument 'c'"),
        ({"name": "city_facts", "arguments": {"city": "Atlantis"}}, "no facts about Atlantis"),  # the tool raises
    ],
)
def test_call_tool_reports_the_models_mistakes_as_an_error_the_model_can_read(call, message):
    result = json.loads(call_tool(FUNCTIONS, call))
    assert list(result) == ["error"] and message in result["error"]


def test_call_tool_never_evaluates_text():
    hostile = {"name": "add", "arguments": {"a": "__import__('os').getcwd()", "b": "1"}}
    assert call_tool(FUNCTIONS, hostile) == "__import__('os').getcwd()1"  # two strings added, nothing run


class HermesTokenizer:
    """A tokenizer with no response_template: parse_reply reads <tool_call> blocks itself."""

    response_template = None


CALL = '<tool_call>{"name": "multiply", "arguments": {"a": 12, "b": 7}}</tool_call>'
PARSED = [{"type": "function", "function": {"name": "multiply", "arguments": {"a": 12, "b": 7}}}]


@pytest.fixture(scope="module")
def tokenizer():
    """The embedded tokenizer, given the response template that parse_response reads."""
    from transformers import AutoTokenizer

    import chatkit

    tokenizer = AutoTokenizer.from_pretrained(chatkit.embedded_model_path())
    tokenizer.response_template = EMBEDDED_RESPONSE_TEMPLATE
    return tokenizer


def test_the_shipped_tokenizer_has_no_response_template_so_the_pipeline_keeps_its_shape():
    """With one, transformers 5.15-5.23's pipeline drops the role and keeps <|im_end|> in prefilled replies."""
    from transformers import pipeline

    import chatkit

    pipe = pipeline("text-generation", model=chatkit.embedded_model_path())
    assert getattr(pipe.tokenizer, "response_template", None) is None
    chat = [{"role": "user", "content": "Hi!"}, {"role": "assistant", "content": "Hello"}]
    last = pipe(chat, max_new_tokens=16)[0]["generated_text"][-1]
    assert last["role"] == "assistant" and "<|im_end|>" not in last["content"]


@pytest.mark.parametrize("which", ["response_template", "hermes"])
@pytest.mark.parametrize(
    "text, expected",
    [
        (CALL, {"role": "assistant", "tool_calls": PARSED}),
        ("12 times 7 is 84.", {"role": "assistant", "content": "12 times 7 is 84."}),
        ("Let me check." + CALL, {"role": "assistant", "content": "Let me check.", "tool_calls": PARSED}),
    ],
)
def test_parse_reply_reads_content_and_calls(tokenizer, which, text, expected):
    message = parse_reply(
        tokenizer if which == "response_template" else HermesTokenizer(), text, prefix="<|im_start|>assistant\n"
    )
    assert message == expected


@pytest.mark.parametrize("which", ["response_template", "hermes"])
def test_parse_reply_keeps_a_call_that_is_not_json_as_text(tokenizer, which):
    text = '<tool_call>{"name": "multiply", "arguments": {"a": 12, </tool_call>'
    message = parse_reply(tokenizer if which == "response_template" else HermesTokenizer(), text)
    assert message == {"role": "assistant", "content": text}


def scripted(monkeypatch, *replies):
    """Make run_tools' model say `replies` in turn; returns the chats it was asked to answer."""
    asked, queue = [], list(replies)

    def fake_reply(model, tokenizer, chat, tools=None, **settings):
        asked.append((list(chat), tools, settings))
        return queue.pop(0)

    monkeypatch.setattr(tools, "reply", fake_reply)
    return asked


QUESTION = [{"role": "user", "content": "What is 12 times 7?"}]


def test_run_tools_runs_the_call_and_returns_the_new_messages(monkeypatch, tokenizer):
    asked = scripted(monkeypatch, CALL, "12 times 7 is 84.")
    chat = list(QUESTION)
    new = run_tools(None, tokenizer, chat, [multiply], max_new_tokens=32)
    assert new == [
        {"role": "assistant", "tool_calls": PARSED},
        {"role": "tool", "content": "84", "name": "multiply"},
        {"role": "assistant", "content": "12 times 7 is 84."},
    ]
    assert chat == QUESTION  # the caller's chat is left as it was
    assert asked[1][0] == QUESTION + new[:2] and asked[0][1] == [multiply] and asked[0][2] == {"max_new_tokens": 32}


def test_run_tools_without_a_call_is_one_reply(monkeypatch, tokenizer):
    scripted(monkeypatch, "Hello! How can I help you today?")
    assert run_tools(None, tokenizer, [{"role": "user", "content": "Hi!"}], EMBEDDED_TOOLS) == [
        {"role": "assistant", "content": "Hello! How can I help you today?"}
    ]


@pytest.mark.parametrize(
    "bad_call, error",
    [
        ('<tool_call>{"name": "divide", "arguments": {"a": 1, "b": 2}}</tool_call>', "unknown tool 'divide'"),
        ('<tool_call>{"name": "city_facts", "arguments": {"city": "Oslo"}}</tool_call>', "no facts about Oslo"),
        ('<tool_call>{"name": "multiply", "arguments": {"a": 12, </tool_call>', "not valid JSON"),
    ],
)
def test_run_tools_tells_the_model_what_went_wrong_and_lets_it_answer(monkeypatch, tokenizer, bad_call, error):
    scripted(monkeypatch, bad_call, "Sorry, that did not work.")
    new = run_tools(None, tokenizer, QUESTION, EMBEDDED_TOOLS)
    assert new[1]["role"] == "tool" and error in json.loads(new[1]["content"])["error"]
    assert new[-1] == {"role": "assistant", "content": "Sorry, that did not work."}


def test_run_tools_stops_at_max_calls_and_keeps_what_was_said(monkeypatch, tokenizer):
    scripted(monkeypatch, *[CALL] * 5)
    with pytest.raises(ToolLoopError, match="more than max_calls=2") as caught:
        run_tools(None, tokenizer, QUESTION, [multiply], max_calls=2)
    assert [m["role"] for m in caught.value.messages] == ["assistant", "tool", "assistant", "tool", "assistant"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(tools=[]), "non-empty list of Python functions"),
        (dict(tools=[get_json_schema(multiply)]), "JSON schemas alone are not enough"),
        (dict(tools=[multiply], max_calls=0), "max_calls must be a whole number"),
    ],
)
def test_run_tools_rejects_bad_arguments_before_generating(monkeypatch, tokenizer, kwargs, message):
    asked = scripted(monkeypatch)
    with pytest.raises(ValueError, match=message):
        run_tools(None, tokenizer, QUESTION, **kwargs)
    assert asked == []


def test_the_embedded_model_calls_the_calculator_and_answers(chat_model):
    model, tokenizer = chat_model
    new = run_tools(model, tokenizer, QUESTION, EMBEDDED_TOOLS, max_new_tokens=64)
    assert new[0]["tool_calls"] == PARSED and new[1]["content"] == "84"
    assert "84" in new[-1]["content"]


# ------------------------------------------------------------------ hostile replies and tools: nothing is lost

TOO_LONG = "1" + "0" * 5000  # past Python's limit of 4,300 digits for turning text into an int


@pytest.mark.parametrize("which", ["response_template", "hermes"])
@pytest.mark.parametrize(
    "bad_call, error",
    [
        ("<tool_call>[1, 2]</tool_call>", "a tool call must be a JSON object, got [1, 2]"),
        ('<tool_call>"add"</tool_call>', 'a tool call must be a JSON object, got "add"'),
        ('<tool_call>{"name": ["add"]}</tool_call>', "the tool call needs a string 'name', the function to call"),
        ('<tool_call>{"name": "add", "arguments": [1, 2]}</tool_call>', "the arguments must be a JSON object"),
        ('<tool_call>{"name": "add", "arguments": {"a": ' + TOO_LONG + ', "b": 1}}</tool_call>', "a number too long"),
        ("<tool_call>" + "[" * 100_000 + "</tool_call>", "a nesting too deep"),
        ('<tool_call>{"name": "add", "arguments": {"a": "\\ud800", "b": "x"}}</tool_call>', "a lone surrogate"),
    ],
)
def test_a_call_of_the_wrong_shape_comes_back_as_an_error_and_the_turn_goes_on(
    monkeypatch, tokenizer, which, bad_call, error
):
    asked = scripted(monkeypatch, bad_call, "Sorry, that did not work.")
    new = run_tools(None, tokenizer if which == "response_template" else HermesTokenizer(), QUESTION, EMBEDDED_TOOLS)
    assert [m["role"] for m in new] == ["assistant", "tool", "assistant"]
    assert error in json.loads(new[1]["content"])["error"]
    assert new[0]["content"] == bad_call  # what the model wrote is kept, as text
    assert asked[1][0] == QUESTION + new[:2] and validate_chat(QUESTION + new)


def test_a_call_cut_off_before_its_closing_tag_is_reported(monkeypatch):
    cut = '<tool_call>{"name": "multiply", "arguments": {"a": 12, "b": 7}}'  # max_new_tokens ran out
    scripted(monkeypatch, cut, "Sorry.")
    new = run_tools(None, HermesTokenizer(), QUESTION, [multiply])
    assert new[0] == {"role": "assistant", "content": cut} and "not valid JSON" in new[1]["content"]


def test_a_good_call_next_to_a_bad_one_runs_and_the_bad_one_is_reported(monkeypatch):
    scripted(monkeypatch, CALL + " <tool_call>[1, 2]</tool_call>", "84.")
    new = run_tools(None, HermesTokenizer(), QUESTION, [multiply])
    assert new[0] == {"role": "assistant", "content": "<tool_call>[1, 2]</tool_call>", "tool_calls": PARSED}
    assert new[1] == {"role": "tool", "content": "84", "name": "multiply"}
    assert "must be a JSON object" in json.loads(new[2]["content"])["error"]


def test_a_call_without_arguments_gets_empty_ones_so_the_chat_stays_valid(monkeypatch):
    def today() -> str:
        """Today's date."""
        return "2026-12-04"

    scripted(monkeypatch, '<tool_call>{"name": "today"}</tool_call>', "It is the 4th.")
    new = run_tools(None, HermesTokenizer(), QUESTION, [today])
    assert new[0]["tool_calls"] == [{"type": "function", "function": {"name": "today", "arguments": {}}}]
    assert new[1]["content"] == "2026-12-04" and validate_chat(QUESTION + new)


HOSTILE_TOOLS = {
    "a_set": lambda: {1, 2},
    "nan": lambda: float("nan"),
    "huge": lambda: 10**5000,
    "loop": lambda: (lambda x: x.append(x) or x)([]),
    "surrogate": lambda: "a\ud800",
    "silent": lambda: 1 / 0 if False else (_ for _ in ()).throw(KeyError()),
}


@pytest.mark.parametrize(
    "call, message",
    [
        ([1, 2], "a tool call must be a JSON object, got [1, 2]"),
        ("add", 'a tool call must be a JSON object, got "add"'),
        ({"name": ["add"]}, "the tool call needs a string 'name'"),
        ({"function": None}, "a tool call must be a JSON object, got null"),
        ({"name": "a_set"}, "the tool a_set returned what JSON cannot hold (Object of type set is not JSON"),
        ({"name": "nan"}, "the tool nan returned what JSON cannot hold (Out of range float values"),
        ({"name": "huge"}, "the tool huge returned what JSON cannot hold (Exceeds the limit (4300 digits)"),
        ({"name": "loop"}, "the tool loop returned what JSON cannot hold (Circular reference detected)"),
        ({"name": "surrogate"}, "the tool surrogate returned text with a lone surrogate"),
        ({"name": "silent"}, "KeyError"),  # an exception without a message still says something
    ],
)
def test_call_tool_turns_every_hostile_call_and_result_into_an_error(call, message):
    result = json.loads(call_tool(HOSTILE_TOOLS, call))
    assert list(result) == ["error"] and message in result["error"]


def test_functions_need_distinct_proper_names():
    with pytest.raises(ValueError, match=r"tools\[0\] \(<lambda>\) has no name the model can call.*with def"):
        tools.functions_by_name([lambda a: a, lambda b: b])

    def add(a: int, b: int) -> int:
        """Add, again."""
        return a + b

    with pytest.raises(ValueError, match=r"tools\[1\] is named 'add', like an earlier tool; .* its own name"):
        tools.functions_by_name([tools.add, add])
    with pytest.raises(ValueError, match=r"tools\[0\] \(partial\) has no name"):
        tools.functions_by_name([functools.partial(tools.add, 1)])


def test_run_tools_and_the_widget_share_one_loop_and_one_limit():
    from chatkit import widgets

    assert widgets.tool_loop is tools.tool_loop and widgets.MAX_TOOL_CALLS is tools.MAX_TOOL_CALLS
    assert inspect.signature(run_tools).parameters["max_calls"].default == tools.MAX_TOOL_CALLS


def echo(value: str) -> str:
    """Give the value back, whatever it is.

    Args:
        value: Anything.
    """
    return value


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(["\ud800", "a\udfffb", "add", "echo", "<too long>"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10,
)
arguments = st.fixed_dictionaries({"value": json_values}) | st.fixed_dictionaries({"a": json_values, "b": json_values})
call_like = st.fixed_dictionaries(
    {"name": st.sampled_from(["add", "echo", "nope"]), "arguments": arguments}
) | st.fixed_dictionaries({}, optional={"name": json_values, "arguments": json_values, "type": json_values})


def dumps(value):
    """JSON text for `value`, as a model might write it: NaN, escapes, and "<too long>" as 5,001 digits."""
    return json.dumps(value).replace('"<too long>"', TOO_LONG)


inside = (
    st.builds(dumps, call_like)
    | st.builds(dumps, json_values)  # JSON of every shape
    | st.text(st.sampled_from(list('{}[]":, name arguments <tool_call></tool_call>0123\\')), max_size=40)
    | st.text(max_size=20)
)
replies = st.lists(st.tuples(st.text(max_size=10), inside), min_size=1, max_size=3).map(
    lambda parts: "".join(f"{before}<tool_call>{block}</tool_call>" for before, block in parts)
)


@settings(max_examples=200, deadline=None)
@given(text=replies, which=st.sampled_from(["response_template", "hermes"]))
def test_whatever_the_model_writes_in_tool_call_tags_the_loop_answers_and_the_chat_stays_valid(tokenizer, text, which):
    answers = iter([text, "done"])
    new = list(
        tools.tool_loop(
            lambda messages: next(answers),
            tokenizer if which == "response_template" else HermesTokenizer(),
            QUESTION,
            [tools.add, echo],
            max_calls=10,
        )
    )
    assert validate_chat(QUESTION + new) and new[-1]["role"] == "assistant"
    for message in new[1:-1]:
        assert message["role"] == "tool" and isinstance(message["content"], str)
        if message["content"].startswith('{"error"'):
            assert list(json.loads(message["content"])) == ["error"]
