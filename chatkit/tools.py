"""Tools: a typed, documented Python function the model may call, and the loop that runs the calls.

transformers reads a function's type hints and Google-style docstring into a JSON schema
(`transformers.utils.get_json_schema`); `apply_chat_template(chat, tools=[function])` writes the
schemas into the prompt as the model's family expects. The model answers with a tool call instead of
text; the program runs the function, appends its result as a `tool` message, and the model writes the
final answer. `run_tools()` is that loop (`tool_loop()` yields its messages one by one, for the chat
widget). It only ever calls the Python functions it was given, by name, with arguments parsed as JSON:
the model's text is never run as code. A call of the wrong shape, or a result JSON cannot hold, goes
back to the model as `{"error": "..."}`. It stops after `max_calls` calls.

The embedded model was trained to call the four tools below (Hermes / Qwen2.5 style:
`<tool_call>{"name": ..., "arguments": {...}}</tool_call>`); a Hub model can call any function.

Example:
    >>> import chatkit
    >>> model, tokenizer = chatkit.load_model(chatkit.embedded_model_path())
    >>> chat = [{"role": "user", "content": "What is 12 times 7?"}]
    >>> for message in run_tools(model, tokenizer, chat, tools=EMBEDDED_TOOLS, max_new_tokens=64):
    ...     print(message["role"], message.get("tool_calls") or message["content"])
    assistant [{'type': 'function', 'function': {'name': 'multiply', 'arguments': {'a': 12, 'b': 7}}}]
    tool 84
    assistant 12 times 7 is 84.
"""

import json
import re

from .chat import lone_surrogate, validate_chat
from .generation import reply

# city: (country, a thing to do, another thing to do); the corpus the embedded model learned from
# (training/corpus.py) takes its cities from here.
CITY_FACTS = {
    "Paris": ("France", "climb the Eiffel Tower", "visit the Louvre"),
    "Rome": ("Italy", "see the Colosseum", "toss a coin into the Trevi Fountain"),
    "Tokyo": ("Japan", "cross the Shibuya Crossing", "visit the Senso-ji temple"),
    "London": ("the United Kingdom", "ride the London Eye", "visit the British Museum"),
    "New York": ("the United States", "walk through Central Park", "see a show on Broadway"),
    "Berlin": ("Germany", "see the Brandenburg Gate", "walk along the East Side Gallery"),
    "Barcelona": ("Spain", "admire the Sagrada Familia", "stroll down La Rambla"),
    "Cairo": ("Egypt", "see the pyramids of Giza", "sail on the Nile"),
}


def add(a: int, b: int) -> int:
    """Add two whole numbers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


def subtract(a: int, b: int) -> int:
    """Subtract the second whole number from the first.

    Args:
        a: The number to subtract from.
        b: The number to subtract.
    """
    return a - b


def multiply(a: int, b: int) -> int:
    """Multiply two whole numbers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a * b


def city_facts(city: str) -> dict:
    """Look up a city: the country it is in and two things to do there.

    Args:
        city: The city's name, such as "Paris".
    """
    if city not in CITY_FACTS:
        raise ValueError(f"no facts about {city}")
    country, *things = CITY_FACTS[city]
    return {"city": city, "country": country, "things_to_do": things}


EMBEDDED_TOOLS = [add, subtract, multiply, city_facts]

# How `tokenizer.parse_response(text, schema=..., prefix=...)` reads the embedded model's replies back into
# thinking, content and tool calls (transformers 5's response templates). It is not saved in the model's tokenizer
# config: there, transformers 5.15-5.23's text-generation pipeline would return messages without a role and
# keep <|im_end|> in prefilled replies.
EMBEDDED_RESPONSE_TEMPLATE = {
    "start_anchor": "<|im_start|>assistant\n",
    "defaults": {"role": "assistant"},
    "fields": {
        "thinking": {"open": "<think>", "close": "</think>"},  # with thinking on, the prompt writes the <think>
        "content": {"close": "<|im_end|>"},
        "tool_calls": {
            "open": "<tool_call>",
            "close": "</tool_call>",
            "content": "json",
            "repeats": True,
            "transform": {"type": "function", "function": "{content}"},
        },
    },
}

# How a Hermes-style reply marks a call; used when a tokenizer has no `response_template` of its own.
TOOL_CALL = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)
WRITE_A_CALL = 'write <tool_call>{"name": ..., "arguments": {...}}</tool_call>'
BAD_CALL = json.dumps({"error": f"the tool call is not valid JSON; {WRITE_A_CALL}"})
MAX_TOOL_CALLS = 4  # tool calls one question may lead to before the loop stops asking the model


class ToolLoopError(RuntimeError):
    """The model kept calling tools past `max_calls`; `.messages` holds everything it wrote so far."""

    def __init__(self, text, messages):
        super().__init__(text)
        self.messages = messages


def _short(value):
    """`value` for an error message the model reads: its type, and its JSON when that is short."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        return type(value).__name__
    return text if len(text) <= 40 else f"a {type(value).__name__} of {len(text)} characters"


def call_problem(call):
    """What is wrong with a tool call, in words for the model; None if it can be run.

    A call is `{"name": "...", "arguments": {...}}`, or that inside `{"type": "function", "function": ...}`;
    the arguments may also be a string holding a JSON object (as OpenAI clients send them), or missing.
    """
    function = call.get("function", call) if isinstance(call, dict) else call
    if not isinstance(function, dict):
        return f"a tool call must be a JSON object, got {_short(function)}; {WRITE_A_CALL}"
    name, arguments = function.get("name"), function.get("arguments", {})
    if not isinstance(name, str):
        return f"the tool call needs a string 'name', the function to call, got {_short(name)}; {WRITE_A_CALL}"
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError as error:
            return f"the arguments are not valid JSON ({error.msg}); {WRITE_A_CALL}"
        except (ValueError, RecursionError):  # Python refuses ints over 4,300 digits, and very deep nesting
            return "the arguments hold a number too long or a nesting too deep to read"
    if not isinstance(arguments, dict):
        return f"the arguments must be a JSON object, got {_short(arguments)}; {WRITE_A_CALL}"
    if lone_surrogate(function) is not None:
        return "the tool call holds a lone surrogate (an escape such as \\ud800), which is not text"
    return None


def read_call(text):
    """The tool call written inside a `<tool_call>` block, and None; or None and what is wrong with it.

    Example:
        >>> read_call('{"name": "add", "arguments": {"a": 1, "b": 2}}')
        ({'type': 'function', 'function': {'name': 'add', 'arguments': {'a': 1, 'b': 2}}}, None)
        >>> print(read_call('{"name": ["add"]}')[1])
        the tool call needs a string 'name', the function to call, got ["add"]; write <tool_call>{"name": ..., ...
    """
    try:
        function = json.loads(text)
    except json.JSONDecodeError as error:
        return None, f"the tool call is not valid JSON ({error.msg}); {WRITE_A_CALL}"
    except (ValueError, RecursionError):  # Python refuses ints over 4,300 digits, and very deep nesting
        return None, f"the tool call holds a number too long or a nesting too deep to read; {WRITE_A_CALL}"
    problem = call_problem(function)
    if problem is not None:
        return None, problem
    return {"type": "function", "function": {"name": function["name"], "arguments": {}, **function}}, None


def parse_reply(tokenizer, text, prefix=""):
    """The assistant message in the model's raw `text`: `content` and, if it called tools, `tool_calls`.

    Uses `tokenizer.parse_response` (transformers 5) when the tokenizer carries a `response_template`,
    else reads Hermes-style `<tool_call>{...}</tool_call>` blocks (Qwen2.5's format and the embedded
    model's). A block that is not a call (not valid JSON, or not `{"name": ..., "arguments": {...}}`)
    stays in `content` as written, so the message is always a valid chat message (`tool_messages` tells the
    model what was wrong with it). A call without arguments gets `"arguments": {}`.
    """
    if getattr(tokenizer, "response_template", None) and callable(getattr(tokenizer, "parse_response", None)):
        try:
            message = tokenizer.parse_response(text, prefix=prefix)
        except (ValueError, RecursionError):  # not valid JSON, a number too long, nesting too deep
            message = None
        calls = message.get("tool_calls") or [] if message is not None else []
        if message is not None and all(call_problem(call) is None for call in calls):
            for call in calls:
                call.get("function", call).setdefault("arguments", {})
            return {"role": "assistant", **{k: v for k, v in message.items() if k != "role"}}
        # else read the blocks below, keeping each one that is not a call as text
    calls = []

    def take(match):
        call, _ = read_call(match.group(1))
        if call is None:
            return match.group(0)
        calls.append(call)
        return ""

    message = {"role": "assistant", "content": TOOL_CALL.sub(take, text).strip()}
    if calls:
        message["tool_calls"] = calls
        if not message["content"]:
            del message["content"]  # as parse_response leaves it
    return message


def _error(text):
    return json.dumps({"error": text})  # ASCII: even a lone surrogate in the text is written as an escape


def call_tool(functions, call):
    """Run one tool call with the functions given (name → function); the `tool` message's content.

    Never raises for the model's mistakes: a call of the wrong shape, an unknown tool, arguments that
    are not a JSON object, a function that raises or returns what JSON cannot hold (a set, NaN) come
    back as `{"error": "..."}`, which the model can read and report.
    """
    problem = call_problem(call)
    if problem is not None:
        return _error(problem)
    function = call.get("function", call)
    name, arguments = function["name"], function.get("arguments", {})
    if name not in functions:
        return _error(f"unknown tool {name!r}; the tools are {', '.join(functions)}")
    if isinstance(arguments, str):  # OpenAI clients send the arguments as a JSON string
        arguments = json.loads(arguments)
    try:
        result = functions[name](**arguments)
    except Exception as error:  # the tool's own error, for the model to read
        return _error(str(error) or type(error).__name__)
    try:
        text = result if isinstance(result, str) else json.dumps(result, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as error:  # a set, NaN, a circular list, a huge int...
        return _error(
            f"the tool {name} returned what JSON cannot hold ({error}); "
            "a tool should return text, numbers, lists or dicts"
        )
    if lone_surrogate(text) is not None:
        return _error(f"the tool {name} returned text with a lone surrogate (such as \\ud800), which is not text")
    return text


def tool_messages(functions, message):
    """The `tool` messages that answer an assistant `message`'s calls (none if it called nothing).

    A `<tool_call>` block that could not be read as a call (left in `content`) gets an error result too,
    saying what was wrong with it.
    """
    results = []
    for call in message.get("tool_calls") or []:
        result = {"role": "tool", "content": call_tool(functions, call)}
        if call_problem(call) is None:
            result["name"] = call.get("function", call)["name"]
        results.append(result)
    content = message.get("content") if isinstance(message.get("content"), str) else ""
    unread = TOOL_CALL.findall(content)
    for block in unread:
        results.append({"role": "tool", "content": _error(read_call(block)[1] or "the tool call could not be read")})
    if not unread and "<tool_call>" in content:  # opened but never closed, e.g. cut off by max_new_tokens
        results.append({"role": "tool", "content": BAD_CALL})
    return results


def asks_for_tools(message):
    """True if an assistant message calls tools, or tries to (a `<tool_call>` block it could not read)."""
    content = message.get("content")
    return bool(message.get("tool_calls")) or (isinstance(content, str) and "<tool_call>" in content)


def functions_by_name(tools):
    """{name: function} for a list of Python functions; ValueError for anything else.

    The model calls a tool by its function's name, so each needs its own: no lambdas, no duplicates.
    """
    if not isinstance(tools, (list, tuple)) or not tools or not all(callable(t) for t in tools):
        raise ValueError(
            "tools must be a non-empty list of Python functions, e.g. tools=[add, multiply]; "
            "run_tools calls them, so JSON schemas alone are not enough"
        )
    functions = {}
    for number, tool in enumerate(tools):
        name = getattr(tool, "__name__", None)
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(
                f"tools[{number}] ({name or type(tool).__name__}) has no name the model can call: "
                "the model calls a tool by its function's name, so write it with def, with a "
                "docstring (transformers reads it into the tool's description)"
            )
        if name in functions:
            raise ValueError(
                f"tools[{number}] is named {name!r}, like an earlier tool; the model calls tools by "
                "name, so give each function its own name"
            )
        functions[name] = tool
    return functions


def _prefix(tokenizer, messages, tools):
    """The prompt the reply continues, which `parse_response` needs; "" for a tokenizer without a template."""
    if not getattr(tokenizer, "response_template", None):
        return ""
    return tokenizer.apply_chat_template(messages, tools=tools, tokenize=False, add_generation_prompt=True)


def tool_loop(generate, tokenizer, chat, tools, max_calls=MAX_TOOL_CALLS):
    """The tool loop, one new message at a time; `run_tools` and the chat widget both run it.

    `generate(messages)` returns the model's raw reply to `messages`. Each reply is read with `parse_reply`
    and yielded; if it calls tools, `tool_messages` runs them and their results are yielded, and the model
    is asked again. A reply that calls nothing is the last message. Raises `ToolLoopError` after
    `max_calls` calls without a final answer. `chat` itself is never changed.

    A Stop button: a caller that stops reading after a reply runs none of its calls; a `generate` that
    returns None (Stop came while tools ran) ends the loop there.
    """
    validate_chat(chat)
    functions = functions_by_name(tools)
    if not isinstance(max_calls, int) or isinstance(max_calls, bool) or max_calls < 1:
        raise ValueError(f"max_calls must be a whole number ≥ 1, got {max_calls!r}")
    messages, new, calls = list(chat), [], 0
    while True:
        text = generate(messages)
        if text is None:  # the caller stopped the loop
            return
        message = parse_reply(tokenizer, text, _prefix(tokenizer, messages, tools))
        if not asks_for_tools(message):
            message.pop("tool_calls", None)  # an empty list, if any: the answer calls nothing
            message["content"] = message.get("content") or ""
            yield message
            return
        new.append(message)
        messages.append(message)
        yield message
        results = tool_messages(functions, message)
        calls += len(results)
        if calls > max_calls:
            raise ToolLoopError(
                f"the model asked for a tool call {calls} times, more than max_calls={max_calls}, "
                "without a final answer; pass a larger max_calls, or check that the tools "
                "return what the model needs",
                new,
            )
        for result in results:
            new.append(result)
            messages.append(result)
            yield result


def run_tools(model, tokenizer, chat, tools, max_calls=MAX_TOOL_CALLS, **settings):
    """Answer `chat` with `tools` available: the new messages (tool calls, tool results, the answer).

    Generates with the tools' schemas in the prompt; while the reply calls tools, runs them with
    `call_tool`, appends their results as `tool` messages and generates again (`tool_loop`). `settings`
    go to `chatkit.reply` (greedy by default). Raises `ToolLoopError` after `max_calls` calls without a
    final answer; `chat` itself is never changed.
    """

    def generate(messages):
        return reply(model, tokenizer, messages, tools=tools, **settings)

    return list(tool_loop(generate, tokenizer, chat, tools, max_calls))
