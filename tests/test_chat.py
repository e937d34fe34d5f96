import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chatkit
from chatkit import validate_chat
from chatkit.chat import ROLES, lone_surrogate

USER = {"role": "user", "content": "Weather in Paris?"}
CALL = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}


def calling(*calls, **fields):
    """An assistant message calling tools, without content unless `fields` give one."""
    return {"role": "assistant", "tool_calls": list(calls), **fields}


def test_valid_chats_are_returned_unchanged():
    chat = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi!"},
        {"role": "assistant", "content": "Hello.", "tool_calls": []},
        {"role": "tool", "content": "42"},
    ]
    assert validate_chat(chat) is chat


@pytest.mark.parametrize(
    "chat",
    [
        [{"role": "user", "content": [{"type": "text", "text": "Hi!"}]}],
        [{"role": "system", "content": [{"type": "text", "text": "Be brief."}]}, USER],
        [{"role": "user", "content": [{"type": "image", "url": "cat.png"}, {"type": "text", "text": "What?"}]}],
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/cat.png"}}]}],
        [{"role": "user", "content": [{"type": "audio", "path": "a.wav"}, {"type": "video"}]}],
        [{"role": "user", "content": []}],
        [USER, calling(CALL)],
        [USER, calling(CALL, content=None)],
        [USER, calling(CALL, content="")],
        [USER, calling(CALL, content="Let me check.")],
        [USER, calling({"id": "call_1", **CALL}, {"name": "get_time", "arguments": {}})],
        [USER, calling({"type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}})],
        [USER, calling({"name": "get_weather", "arguments": '{"city": "Paris"}'})],
        [USER, calling({"name": "get_weather", "arguments": {"city": "Paris"}}, extra="kept")],
        [USER, calling(CALL), {"role": "tool", "content": "22°C"}],
        [USER, calling(CALL), {"role": "tool", "content": "22°C", "tool_call_id": "call_1", "name": "get_weather"}],
        [USER, calling(CALL), {"role": "tool", "content": [{"type": "text", "text": "22°C"}], "name": None}],
        [{"role": "user", "content": "Hi", "tool_calls": "ignored on a user message"}],
        [USER, {"role": "assistant", "content": "42", "thinking": "Add the tens."}],
        [USER, {"role": "assistant", "content": "42", "reasoning_content": "Add the tens.", "thinking": None}],
        [{"role": "user", "content": "Hi", "thinking": 3}],  # only an assistant's thought is read
    ],
)
def test_every_shape_transformers_accepts_is_valid(chat):
    assert validate_chat(chat) is chat


@pytest.mark.parametrize(
    "chat, expected",
    [
        ("Hello", "a chat must be a list of messages"),
        ({"role": "user", "content": "Hi"}, "a chat must be a list of messages"),
        ([], "the chat is empty"),
        (["Hi"], "message 0 must be a dict"),
        ([{"role": "user", "content": "Hi"}, None], "message 1 must be a dict"),
        ([{"content": "Hi"}], "message 0 has no 'role' field"),
        ([{"role": "user"}], "message 0 has no 'content' field"),
        ([{"role": "assistant"}], "message 0 has no 'content' field"),
        ([{"role": "bot", "content": "Hi"}], "message 0: 'role' is str 'bot'"),
        ([{"role": None, "content": "Hi"}], "message 0: 'role' is NoneType"),
        ([{"role": "user", "content": None}], "message 0: 'content' must be a string"),
        ([{"role": "assistant", "content": None}], "message 0: 'content' must be a string or a list of content"),
        ([{"role": "user", "content": 42}], "message 0: 'content' must be a string or a list of content blocks"),
        (
            [{"role": "user", "content": "Hi"}, {"role": "system", "content": "Be brief."}],
            "message 1: 'role' is 'system' but a system message may only be the first",
        ),
        # content blocks
        ([{"role": "user", "content": ["Hi"]}], "message 0: 'content'[0] must be a content block"),
        ([{"role": "user", "content": [{"text": "Hi"}]}], "message 0: 'content'[0] has no string 'type'"),
        ([{"role": "user", "content": [{"type": 1, "text": "Hi"}]}], "message 0: 'content'[0] has no string 'type'"),
        ([USER, {"role": "user", "content": [{"type": "text"}]}], "message 1: 'content'[0] is a text block"),
        (
            [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": None}]}],
            "message 0: 'content'[1] is a text block, so it needs a string 'text'",
        ),
        # tool calls
        ([USER, calling()], "message 1: 'tool_calls' is empty and there is no 'content'"),
        ([USER, calling(content="")], "message 1: 'tool_calls' is empty"),
        ([USER, {"role": "assistant", "tool_calls": CALL}], "message 1: 'tool_calls' must be a list"),
        ([USER, calling("get_weather")], "message 1: 'tool_calls'[0] must be a dict"),
        ([USER, calling({"arguments": {}})], "message 1: 'tool_calls'[0] needs a string 'name'"),
        ([USER, calling(CALL, {"name": 7, "arguments": {}})], "message 1: 'tool_calls'[1] needs a string 'name'"),
        (
            [USER, calling({"type": "function", "function": {"arguments": {}}})],
            "message 1: 'tool_calls'[0]['function'] needs a string 'name'",
        ),
        (
            [USER, calling({"type": "function", "function": "get_weather"})],
            "message 1: 'tool_calls'[0]['function'] must be a dict",
        ),
        ([USER, calling({"name": "get_time"})], "message 1: 'tool_calls'[0] has no 'arguments'"),
        (
            [USER, calling({"name": "get_weather", "arguments": "city=Paris"})],
            "message 1: 'tool_calls'[0]: 'arguments' is a string but not valid JSON",
        ),
        (
            [USER, calling({"type": "function", "function": {"name": "f", "arguments": '["Paris"]'}})],
            "message 1: 'tool_calls'[0]['function']: 'arguments' is JSON but not an object",
        ),
        (
            [USER, calling({"name": "get_weather", "arguments": ["Paris"]})],
            "message 1: 'tool_calls'[0]: 'arguments' must be a dict",
        ),
        ([USER, calling(CALL, content=[{"type": "text"}])], "message 1: 'content'[0] is a text block"),
        # tool messages
        (
            [USER, calling(CALL), {"role": "tool", "content": {"celsius": 22}}],
            "message 2: 'content' must be a string or a list of content blocks, got dict",
        ),
        ([USER, calling(CALL), {"role": "tool"}], "message 2 has no 'content' field"),
        ([USER, calling(CALL), {"role": "tool", "content": "22", "tool_call_id": 1}], "message 2: 'tool_call_id'"),
        ([USER, calling(CALL), {"role": "tool", "content": "22", "name": ["f"]}], "message 2: 'name' must be a"),
        # an assistant's thought
        ([USER, {"role": "assistant", "content": "42", "thinking": ["Add."]}], "message 1: 'thinking' must be a str"),
        ([USER, {"role": "assistant", "content": "", "reasoning_content": 4}], "message 1: 'reasoning_content' must"),
        # text that is not text: a lone surrogate breaks the tokenizer, so it is refused here, where it is
        ([{"role": "user", "content": "\ud800"}], "message 0: 'content' holds a lone surrogate"),
        (
            [USER, {"role": "user", "content": [{"type": "text", "text": "a\udfff"}]}],
            "message 1: 'content'[0]['text'] holds a lone surrogate",
        ),
        (
            [USER, calling({"type": "function", "function": {"name": "f", "arguments": {"city": "\ud800"}}})],
            "message 1: 'tool_calls'[0]['function']['arguments']['city'] holds a lone surrogate",
        ),
        # JSON that Python refuses to read: nested too deep, or a number over 4,300 digits
        ([USER, calling({"name": "f", "arguments": "[" * 100_000})], "message 1: 'tool_calls'[0]: 'arguments' is a st"),
        ([USER, calling({"name": "f", "arguments": '{"a": ' + "1" * 5000 + "}"})], "message 1: 'tool_calls'[0]: 'ar"),
        # a value too big to print still gets a message
        ([{"role": 10**5000, "content": "Hi"}], "message 0: 'role' is int; it must be one of"),
    ],
)
def test_each_malformed_chat_names_the_message_and_field(chat, expected):
    with pytest.raises(ValueError, match="^" + expected.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        validate_chat(chat)


@pytest.mark.parametrize(
    "chat, fix",
    [
        ([USER, calling(CALL), {"role": "tool", "content": {"celsius": 22}}], "json.dumps(result)"),
        ([USER, calling({"name": "f", "arguments": "city=Paris"})], 'write them as a dict, such as {"city": "Paris"}'),
        ([USER, calling({"name": "f", "arguments": "[1]"})], 'such as {"city": "Paris"}'),
        ([USER, calling({"name": "f"})], "write 'arguments': {}"),
        ([USER, calling({"arguments": {}})], '"function": {"name": "get_weather"'),
        ([{"role": "user", "content": ["Hi"]}], "make 'content' a string"),
        ([{"role": "user", "content": [{"type": "text"}]}], '{"type": "text", "text": "Hello!"}'),
        ([{"role": "user", "content": "Hi \ud800"}], "remove it, or clean the text with text.encode("),
    ],
)
def test_errors_say_how_to_fix_it(chat, fix):
    with pytest.raises(ValueError) as info:
        validate_chat(chat)
    assert fix in str(info.value)


# What a tool-aware chat template makes of the accepted shapes: transformers renders them all.
TOOL_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message.role + '\\n' }}"
    "{% if message.content is string %}{{ message.content }}"
    "{% elif message.content %}{% for block in message.content %}"
    "{% if block.type == 'text' %}{{ block.text }}{% else %}<{{ block.type }}>{% endif %}{% endfor %}{% endif %}"
    "{% for call in message.tool_calls or [] %}{% set fn = call.function or call %}"
    "<tool_call>{{ fn.name }} {% if fn.arguments is string %}{{ fn.arguments }}"
    "{% else %}{{ fn.arguments | tojson }}{% endif %}</tool_call>{% endfor %}"
    "{{ '<|im_end|>\\n' }}{% endfor %}"
)


@pytest.mark.parametrize(
    "chat, expected",
    [
        (
            [{"role": "user", "content": [{"type": "image", "url": "cat.png"}, {"type": "text", "text": "What?"}]}],
            "<|im_start|>user\n<image>What?<|im_end|>\n",
        ),
        (
            [USER, calling(CALL, content=None), {"role": "tool", "content": "22°C", "tool_call_id": "call_1"}],
            "<|im_start|>user\nWeather in Paris?<|im_end|>\n"
            '<|im_start|>assistant\n<tool_call>get_weather {"city": "Paris"}</tool_call><|im_end|>\n'
            "<|im_start|>tool\n22°C<|im_end|>\n",
        ),
        (
            [USER, calling({"name": "get_weather", "arguments": '{"city": "Rome"}'}, content="")],
            "<|im_start|>user\nWeather in Paris?<|im_end|>\n<|im_start|>assistant\n"
            '<tool_call>get_weather {"city": "Rome"}</tool_call><|im_end|>\n',
        ),
    ],
)
def test_transformers_renders_the_accepted_shapes(chat, expected):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(chatkit.embedded_model_path())
    tokenizer.chat_template = TOOL_TEMPLATE
    assert tokenizer.apply_chat_template(validate_chat(chat), tokenize=False) == expected


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=10)
    | st.builds(pow, st.just(10), st.just(5000))
    | st.sampled_from(["\ud800", "Hi \udfff"])
)
anything = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
blocks = st.fixed_dictionaries(
    {}, optional={"type": st.sampled_from(["text", "image"]) | anything, "text": st.text(max_size=5) | anything}
)
arguments = st.dictionaries(st.text(max_size=4), scalars, max_size=2) | st.sampled_from(['{"a": 1}', "[1]", "x"])
function = st.fixed_dictionaries(
    {}, optional={"name": st.text(max_size=5) | anything, "arguments": arguments | anything}
)
calls = function | st.fixed_dictionaries({"function": function | anything}, optional={"type": st.just("function")})
messages = st.fixed_dictionaries(
    {},
    optional={
        "role": st.sampled_from(ROLES + ("bot", "")) | anything,
        "content": st.text(max_size=20) | st.lists(blocks | anything, max_size=3) | anything,
        "tool_calls": st.lists(calls | anything, max_size=2) | anything,
        "tool_call_id": st.text(max_size=5) | anything,
    },
)
chats = st.lists(messages | anything, max_size=4) | anything


@settings(max_examples=200, deadline=None)
@given(chats)
def test_any_input_is_either_valid_or_a_value_error(chat):
    try:
        assert validate_chat(chat) is chat
    except ValueError as error:
        assert str(error)  # a message, never an empty error
    else:  # accepted: then it really is well formed
        for message in chat:
            assert message["role"] in ROLES
            content = message.get("content")
            if isinstance(content, list):
                assert all(isinstance(block["type"], str) for block in content)
            else:
                assert isinstance(content, str) or (message["role"] == "assistant" and message["tool_calls"])
        assert lone_surrogate(chat) is None  # every string in it can be encoded, so a tokenizer can read it
