import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatkit import validate_chat
from chatkit.chat import ROLES


def test_valid_chats_are_returned_unchanged():
    chat = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi!"},
        {"role": "assistant", "content": "Hello.", "tool_calls": []},
        {"role": "tool", "content": "42"},
    ]
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
        ([{"role": "bot", "content": "Hi"}], "message 0: 'role' is str 'bot'"),
        ([{"role": None, "content": "Hi"}], "message 0: 'role' is NoneType"),
        ([{"role": "user", "content": ["Hi"]}], "message 0: 'content' must be a string, got list"),
        ([{"role": "user", "content": None}], "message 0: 'content' must be a string"),
        (
            [{"role": "user", "content": "Hi"}, {"role": "system", "content": "Be brief."}],
            "message 1: 'role' is 'system' but a system message may only be the first",
        ),
    ],
)
def test_each_malformed_chat_names_the_message_and_field(chat, expected):
    with pytest.raises(ValueError, match="^" + expected.replace("(", r"\(").replace(")", r"\)")):
        validate_chat(chat)


scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10)
anything = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
messages = st.fixed_dictionaries(
    {},
    optional={
        "role": st.sampled_from(ROLES + ("bot", "")) | anything,
        "content": st.text(max_size=20) | anything,
        "tool_calls": anything,
    },
)
chats = st.lists(messages | anything, max_size=4) | anything


@given(chats)
def test_any_input_is_either_valid_or_a_value_error(chat):
    try:
        assert validate_chat(chat) is chat
    except ValueError as error:
        assert str(error)  # a message, never an empty error
    else:  # accepted: then it really is well formed
        assert all(m["role"] in ROLES and isinstance(m["content"], str) for m in chat)
