"""chatkit.tools: the example tools, reading a reply's tool calls, running them, and the bounded loop."""

import json

import pytest
from transformers.utils import get_json_schema

from chatkit import tools
from chatkit.tools import (EMBEDDED_RESPONSE_TEMPLATE, EMBEDDED_TOOLS, ToolLoopError, call_tool, city_facts, multiply,
                           parse_reply, run_tools)

FUNCTIONS = {tool.__name__: tool for tool in EMBEDDED_TOOLS}


def test_each_example_tool_has_a_complete_schema():
    for tool in EMBEDDED_TOOLS:
        schema = get_json_schema(tool)["function"]
        assert schema["description"] and set(schema["parameters"]["required"]) == set(schema["parameters"]["properties"])
        assert all(p.get("description") for p in schema["parameters"]["properties"].values())


def test_city_facts_knows_its_cities_and_says_which_it_does_not():
    assert city_facts("Tokyo") == {"city": "Tokyo", "country": "Japan",
                                   "things_to_do": ["cross the Shibuya Crossing", "visit the Senso-ji temple"]}
    with pytest.raises(ValueError, match="no facts about Lisbon"):
        city_facts("Lisbon")


@pytest.mark.parametrize("call, expected", [
    ({"type": "function", "function": {"name": "multiply", "arguments": {"a": 12, "b": 7}}}, "84"),
    ({"name": "add", "arguments": '{"a": 2, "b": 3}'}, "5"),  # flat, with OpenAI's JSON-string arguments
    ({"function": {"name": "city_facts", "arguments": {"city": "Cairo"}}},
     json.dumps(city_facts("Cairo"), ensure_ascii=False)),
])
def test_call_tool_runs_the_named_function(call, expected):
    assert call_tool(FUNCTIONS, call) == expected


@pytest.mark.parametrize("call, message", [
    ({"name": "divide", "arguments": {"a": 1, "b": 2}}, "unknown tool 'divide'; the tools are add, subtract"),
    ({"name": "add", "arguments": '{"a": 1, '}, "the arguments are not valid JSON"),
    ({"name": "add", "arguments": "[1, 2]"}, "the arguments must be a JSON object"),
    ({"name": "add", "arguments": {"a": 1, "c": 2}}, "unexpected keyword argument 'c'"),
    ({"name": "city_facts", "arguments": {"city": "Atlantis"}}, "no facts about Atlantis"),  # the tool raises
])
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
@pytest.mark.parametrize("text, expected", [
    (CALL, {"role": "assistant", "tool_calls": PARSED}),
    ("12 times 7 is 84.", {"role": "assistant", "content": "12 times 7 is 84."}),
    ("Let me check." + CALL, {"role": "assistant", "content": "Let me check.", "tool_calls": PARSED}),
])
def test_parse_reply_reads_content_and_calls(tokenizer, which, text, expected):
    message = parse_reply(tokenizer if which == "response_template" else HermesTokenizer(), text,
                          prefix="<|im_start|>assistant\n")
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
    assert new == [{"role": "assistant", "tool_calls": PARSED},
                   {"role": "tool", "content": "84", "name": "multiply"},
                   {"role": "assistant", "content": "12 times 7 is 84."}]
    assert chat == QUESTION  # the caller's chat is left as it was
    assert asked[1][0] == QUESTION + new[:2] and asked[0][1] == [multiply] and asked[0][2] == {"max_new_tokens": 32}


def test_run_tools_without_a_call_is_one_reply(monkeypatch, tokenizer):
    scripted(monkeypatch, "Hello! How can I help you today?")
    assert run_tools(None, tokenizer, [{"role": "user", "content": "Hi!"}], EMBEDDED_TOOLS) == [
        {"role": "assistant", "content": "Hello! How can I help you today?"}]


@pytest.mark.parametrize("bad_call, error", [
    ('<tool_call>{"name": "divide", "arguments": {"a": 1, "b": 2}}</tool_call>', "unknown tool 'divide'"),
    ('<tool_call>{"name": "city_facts", "arguments": {"city": "Oslo"}}</tool_call>', "no facts about Oslo"),
    ('<tool_call>{"name": "multiply", "arguments": {"a": 12, </tool_call>', "not valid JSON"),
])
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


@pytest.mark.parametrize("kwargs, message", [
    (dict(tools=[]), "non-empty list of Python functions"),
    (dict(tools=[get_json_schema(multiply)]), "JSON schemas alone are not enough"),
    (dict(tools=[multiply], max_calls=0), "max_calls must be a whole number"),
])
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
