"""Chats as transformers uses them: a list of `{"role": ..., "content": ...}` dicts.

`content` is a string, or a list of typed blocks (`{"type": "text", "text": ...}`, images...). An
assistant message may call tools instead of answering (`tool_calls`, no `content`), and a `tool`
message brings a result back; a thinking model's assistant message may carry its thought (`thinking`).
`validate_chat()` checks these shapes before a chat reaches a template or a pipeline, where a mistake
would surface as a confusing Jinja or key error far from its cause.

Example:
    >>> validate_chat([{"role": "user", "content": "Hi!"}])
    [{'role': 'user', 'content': 'Hi!'}]
    >>> call = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    >>> chat = [
    ...     {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
    ...     {"role": "assistant", "tool_calls": [call]},
    ...     {"role": "tool", "name": "get_weather", "content": "22°C, sunny"},
    ... ]
    >>> validate_chat(chat) is chat
    True
"""

import json

ROLES = ("system", "user", "assistant", "tool")
_TEXT_BLOCK = '{"type": "text", "text": "Hello!"}'
_TOOL_CALL = '{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}'
# Optional fields that must be strings when given, by role.
_STRING_FIELDS = {"tool": ("tool_call_id", "name"), "assistant": ("thinking", "reasoning_content")}


def _describe(value):
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an int over 4,300 digits, or a list nested thousands deep
        return type(value).__name__
    return f"{type(value).__name__} {text}" if len(text) <= 40 else type(value).__name__


def lone_surrogate(value):
    """Where `value` (a string, or lists and dicts of them) holds a lone surrogate: "" for the string itself,
    "[0]['text']" inside; None if nowhere.

    A lone surrogate ("\\ud800", half of a UTF-16 pair, left by a bad decode or a JSON escape) is a Python
    string but not text: it cannot be encoded as UTF-8, so a tokenizer would fail on it, far from its cause.

    Example:
        >>> lone_surrogate([{"type": "text", "text": "a\\ud800"}])
        "[0]['text']"
    """
    stack = [(value, "")]
    while stack:  # a loop, not recursion: data nested thousands deep must not overflow the stack
        value, where = stack.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return where
        elif isinstance(value, dict):
            stack += [(key, f"{where} (a key)") for key in value]
            stack += [(item, f"{where}[{key!r}]") for key, item in value.items()]
        elif isinstance(value, (list, tuple)):
            stack += [(item, f"{where}[{number}]") for number, item in enumerate(value)]
    return None


def validate_chat(chat):
    """Return `chat` unchanged if it is a valid chat; raise ValueError naming the message and field if not.

    A valid chat is a non-empty list of dicts, each with a `role` (system, user, assistant or tool)
    and a `content`: a string, or a list of blocks that each have a string "type" (a "text" block
    needs a string "text"; other blocks pass untouched). An assistant message may leave `content` out
    when it has `tool_calls`: a list of `{"type": "function", "function": {"name": ..., "arguments": ...}}`
    or flat `{"name": ..., "arguments": ...}`, where arguments are a dict or a string holding a JSON
    object. An assistant message's thought (`thinking`, or `reasoning_content` as Qwen3 names it) is a
    string. A system message may only come first. No string anywhere in a message may hold a lone surrogate
    (see `lone_surrogate`). Other keys are passed through untouched.
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
            raise ValueError(f"message {index} must be a dict with 'role' and 'content', got {_describe(message)}")
        if "role" not in message:
            raise ValueError(f"message {index} has no 'role' field; every message needs 'role' and 'content'")
        role = message["role"]
        if not isinstance(role, str) or role not in ROLES:
            raise ValueError(f"message {index}: 'role' is {_describe(role)}; it must be one of {', '.join(ROLES)}")
        content, calls = message.get("content"), message.get("tool_calls") if role == "assistant" else None
        if calls is not None:
            _check_tool_calls(index, calls, content is None or content == "")
        if content is None and not calls:
            if "content" not in message:
                raise ValueError(
                    f"message {index} has no 'content' field; every message needs 'role' and 'content' "
                    "(only an assistant message with 'tool_calls' may leave it out)"
                )
            raise ValueError(
                f"message {index}: 'content' must be a string or a list of content blocks, got None; "
                "only an assistant message with 'tool_calls' may have no content"
            )
        if content is not None:
            _check_content(index, role, content)
        for field in _STRING_FIELDS.get(role, ()):
            if message.get(field) is not None and not isinstance(message[field], str):
                raise ValueError(f"message {index}: '{field}' must be a string, got {_describe(message[field])}")
        for field, value in message.items():
            where = lone_surrogate(value)
            if where is not None:
                raise ValueError(
                    f"message {index}: {field!r}{where} holds a lone surrogate (such as '\\ud800', half of a "
                    "UTF-16 pair), which is not text a tokenizer can read; remove it, or clean the text with "
                    "text.encode('utf-8', 'replace').decode()"
                )
        if role == "system" and index != 0:
            raise ValueError(
                f"message {index}: 'role' is 'system' but a system message may only be the first message; "
                "move it to the start of the chat"
            )
    return chat


def _check_content(index, role, content):
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        hint = "; write a tool's result as text, such as json.dumps(result)" if role == "tool" else ""
        raise ValueError(
            f"message {index}: 'content' must be a string or a list of content blocks, got {_describe(content)}{hint}"
        )
    for number, block in enumerate(content):
        where = f"message {index}: 'content'[{number}]"
        if not isinstance(block, dict):
            raise ValueError(
                f"{where} must be a content block such as {_TEXT_BLOCK}, got {_describe(block)}; "
                "for plain text, make 'content' a string"
            )
        if not isinstance(block.get("type"), str):
            raise ValueError(f"{where} has no string 'type'; write it as {_TEXT_BLOCK}")
        if block["type"] == "text" and not isinstance(block.get("text"), str):
            raise ValueError(
                f"{where} is a text block, so it needs a string 'text', got {_describe(block.get('text'))}; "
                f"write it as {_TEXT_BLOCK}"
            )


def _check_tool_calls(index, calls, no_content):
    if not isinstance(calls, list):
        raise ValueError(
            f"message {index}: 'tool_calls' must be a list of tool calls, got {_describe(calls)}; "
            f"write it as [{_TOOL_CALL}]"
        )
    if not calls and no_content:
        raise ValueError(
            f"message {index}: 'tool_calls' is empty and there is no 'content'; "
            "give the message a 'content' or at least one tool call"
        )
    for number, call in enumerate(calls):
        where = f"message {index}: 'tool_calls'[{number}]"
        if isinstance(call, dict) and "function" in call:
            call, where = call["function"], where + "['function']"
        if not isinstance(call, dict):
            raise ValueError(f"{where} must be a dict such as {_TOOL_CALL}, got {_describe(call)}")
        if not isinstance(call.get("name"), str):
            raise ValueError(
                f"{where} needs a string 'name' (the function to call), got {_describe(call.get('name'))}; "
                f"write the call as {_TOOL_CALL}"
            )
        if "arguments" not in call:
            raise ValueError(f"{where} has no 'arguments'; for a function without parameters write 'arguments': {{}}")
        arguments = call["arguments"]
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except (ValueError, RecursionError) as error:  # also a number over 4,300 digits, or too deep
                raise ValueError(
                    f"{where}: 'arguments' is a string but not valid JSON ({error}); "
                    'write them as a dict, such as {"city": "Paris"}'
                ) from None
            if not isinstance(arguments, dict):
                raise ValueError(
                    f"{where}: 'arguments' is JSON but not an object (it reads as {_describe(arguments)}); "
                    'write them as a dict of parameter names to values, such as {"city": "Paris"}'
                )
        elif not isinstance(arguments, dict):
            raise ValueError(
                f"{where}: 'arguments' must be a dict (or a string holding a JSON object), "
                f'got {_describe(arguments)}; write them as a dict, such as {{"city": "Paris"}}'
            )


def split_system_prompt(chat):
    """(the system prompt as text, the other messages) of a valid chat; "" when it has no system message.

    A system message of text blocks is joined into one string. One with other blocks (an image) is not a
    text prompt: ValueError, saying so.

    Example:
        >>> split_system_prompt([{"role": "system", "content": [{"type": "text", "text": "Be terse."}]}])
        ('Be terse.', [])
    """
    if not chat or chat[0]["role"] != "system":
        return "", list(chat)
    content = chat[0]["content"]
    others = sorted({block["type"] for block in content} - {"text"}) if isinstance(content, list) else []
    if others:
        raise ValueError(
            f"the system message has {', '.join(others)} blocks, but a system prompt is text only; "
            "write the system message as text"
        )
    return message_text(chat[0]), list(chat[1:])


def message_pictures(message):
    """The pictures a message carries in its image blocks (`{"type": "image", "image": <PIL image>}`), in order;
    blocks that name a `url` or `path` instead are left to the processor, which fetches them."""
    content = message.get("content")
    if isinstance(content, str) or not content:
        return []
    return [b["image"] for b in content if b.get("type") == "image" and callable(getattr(b.get("image"), "save", None))]


def message_text(message):
    """The text a person reads for a message: its text blocks joined, then any tool calls as calls.

    Example:
        >>> call = {"type": "function", "function": {"name": "multiply", "arguments": {"a": 12, "b": 7}}}
        >>> message_text({"role": "assistant", "tool_calls": [call]})
        'multiply(a=12, b=7)'
    """
    content = message.get("content") or ""
    if not isinstance(content, str):
        content = "".join(block.get("text", "") for block in content if block.get("type") == "text")
    calls = []
    for call in message.get("tool_calls") or []:
        function = call.get("function", call)
        arguments = function.get("arguments", {})
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except json.JSONDecodeError:
                arguments = {"": arguments}
        calls.append(f"{function.get('name')}(" + ", ".join(f"{k}={v!r}" for k, v in arguments.items()) + ")")
    return "\n".join([content] * bool(content) + calls)


def message_thought(message):
    """The thought an assistant message carries, for a person to read: its `thinking` (or `reasoning_content`,
    Qwen3's name for it); "" for none.

    Example:
        >>> message_thought({"role": "assistant", "content": "42", "thinking": "Add the tens."})
        'Add the tens.'
    """
    if message.get("role") != "assistant":
        return ""
    return message.get("thinking") or message.get("reasoning_content") or ""
