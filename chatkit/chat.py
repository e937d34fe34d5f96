"""Chats as transformers uses them: a list of `{"role": ..., "content": ...}` dicts.

`validate_chat()` checks that shape before a chat reaches a template or a pipeline, where a
mistake would surface as a confusing Jinja or key error far from its cause.

Example:
    >>> validate_chat([{"role": "user", "content": "Hi!"}])
    [{'role': 'user', 'content': 'Hi!'}]
"""

ROLES = ("system", "user", "assistant", "tool")


def _describe(value):
    return f"{type(value).__name__} {value!r}" if len(repr(value)) <= 40 else type(value).__name__


def validate_chat(chat):
    """Return `chat` unchanged if it is a valid chat; raise ValueError naming the message and field if not.

    A valid chat is a non-empty list of dicts, each with a `role` (system, user, assistant or tool)
    and a string `content`; a system message may only come first. Other keys (such as `tool_calls`)
    are passed through untouched.
    """
    if not isinstance(chat, list):
        raise ValueError(
            f"a chat must be a list of messages, got {_describe(chat)}; "
            'write it as [{"role": "user", "content": "Hello!"}]'
        )
    if not chat:
        raise ValueError('the chat is empty; add a message such as {"role": "user", "content": "Hello!"}')
    for index, message in enumerate(chat):
        if not isinstance(message, dict):
            raise ValueError(
                f"message {index} must be a dict with 'role' and 'content', got {_describe(message)}"
            )
        for field in ("role", "content"):
            if field not in message:
                raise ValueError(f"message {index} has no '{field}' field; every message needs 'role' and 'content'")
        role = message["role"]
        if not isinstance(role, str) or role not in ROLES:
            raise ValueError(
                f"message {index}: 'role' is {_describe(role)}; it must be one of {', '.join(ROLES)}"
            )
        if not isinstance(message["content"], str):
            raise ValueError(
                f"message {index}: 'content' must be a string, got {_describe(message['content'])}"
            )
        if role == "system" and index != 0:
            raise ValueError(
                f"message {index}: 'role' is 'system' but a system message may only be the first message; "
                "move it to the start of the chat"
            )
    return chat
