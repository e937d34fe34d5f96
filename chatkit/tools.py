"""Tools: a typed, documented Python function the model may call, and the loop that runs the calls.

transformers reads a function's type hints and Google-style docstring into a JSON schema
(`transformers.utils.get_json_schema`); `apply_chat_template(chat, tools=[function])` writes the
schemas into the prompt as the model's family expects. The model answers with a tool call instead of
text; the program runs the function, appends its result as a `tool` message, and the model writes the
final answer. `run_tools()` is that loop. It only ever calls the Python functions it was given, by
name, with arguments parsed as JSON: the model's text is never run as code. It stops after
`max_calls` calls.

The embedded model was trained to call the four tools below (Hermes / Qwen2.5 style:
`<tool_call>{"name": ..., "arguments": {...}}</tool_call>`); a Hub model can call any function.

Example:
    >>> import chatkit
    >>> model, tokenizer = chatkit.load_model(chatkit.embedded_model_path())
    >>> chat = [{"role": "user", "content": "What is 12 times 7?"}]
    >>> for message in run_tools(model, tokenizer, chat, tools=EMBEDDED_TOOLS):
    ...     print(message["role"], message.get("tool_calls") or message["content"])
    assistant [{'type': 'function', 'function': {'name': 'multiply', 'arguments': {'a': 12, 'b': 7}}}]
    tool 84
    assistant 12 times 7 is 84.
"""

import json
import re

from .chat import validate_chat
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
# content and tool calls (transformers 5's response templates). It is not saved in the model's tokenizer
# config: there, transformers 5.15-5.23's text-generation pipeline would return messages without a role and
# keep <|im_end|> in prefilled replies.
EMBEDDED_RESPONSE_TEMPLATE = {
    "start_anchor": "<|im_start|>assistant\n",
    "defaults": {"role": "assistant"},
    "fields": {
        "content": {"close": "<|im_end|>"},
        "tool_calls": {"open": "<tool_call>", "close": "</tool_call>", "content": "json", "repeats": True,
                       "transform": {"type": "function", "function": "{content}"}},
    },
}

# How a Hermes-style reply marks a call; used when a tokenizer has no `response_template` of its own.
TOOL_CALL = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)
BAD_CALL = json.dumps({"error": 'the tool call is not valid JSON; write <tool_call>{"name": ..., "arguments": {...}}'
                                "</tool_call>"})


class ToolLoopError(RuntimeError):
    """The model kept calling tools past `max_calls`; `.messages` holds everything it wrote so far."""

    def __init__(self, text, messages):
        super().__init__(text)
        self.messages = messages


def parse_reply(tokenizer, text, prefix=""):
    """The assistant message in the model's raw `text`: `content` and, if it called tools, `tool_calls`.

    Uses `tokenizer.parse_response` (transformers 5) when the tokenizer carries a `response_template`,
    else reads Hermes-style `<tool_call>{...}</tool_call>` blocks (Qwen2.5's format and the embedded
    model's). A block that is not valid JSON stays in `content` as written (`run_tools` says so).
    """
    if getattr(tokenizer, "response_template", None) and callable(getattr(tokenizer, "parse_response", None)):
        try:
            message = tokenizer.parse_response(text, prefix=prefix)
            return {"role": "assistant", **{k: v for k, v in message.items() if k != "role"}}
        except ValueError:
            pass  # a call that is not valid JSON: read below, keeping it as text
    calls = []

    def take(match):
        try:
            calls.append({"type": "function", "function": json.loads(match.group(1))})
            return ""
        except json.JSONDecodeError:
            return match.group(0)

    message = {"role": "assistant", "content": TOOL_CALL.sub(take, text).strip()}
    if calls:
        message["tool_calls"] = calls
        if not message["content"]:
            del message["content"]  # as parse_response leaves it
    return message


def call_tool(functions, call):
    """Run one tool call with the functions given (name → function); the `tool` message's content.

    Never raises for the model's mistakes: an unknown tool, arguments that are not a JSON object,
    or a function that raises come back as `{"error": "..."}`, which the model can read and report.
    """
    function = call.get("function", call)
    name, arguments = function.get("name"), function.get("arguments", {})
    if name not in functions:
        return json.dumps({"error": f"unknown tool {name!r}; the tools are {', '.join(functions)}"})
    if isinstance(arguments, str):  # OpenAI clients send the arguments as a JSON string
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError as error:
            return json.dumps({"error": f"the arguments are not valid JSON ({error.msg})"})
    if not isinstance(arguments, dict):
        return json.dumps({"error": f"the arguments must be a JSON object, got {arguments!r}"})
    try:
        result = functions[name](**arguments)
    except Exception as error:  # the tool's own error, for the model to read
        return json.dumps({"error": str(error)})
    return result if isinstance(result, str) else json.dumps(result, ensure_ascii=False)


def tool_messages(functions, message):
    """The `tool` messages that answer an assistant `message`'s calls (none if it called nothing).

    A `<tool_call>` that could not be read as JSON (left in `content`) gets an error result too.
    """
    calls = message.get("tool_calls") or []
    if not calls and "<tool_call>" in message.get("content", ""):
        return [{"role": "tool", "content": BAD_CALL}]
    results = []
    for call in calls:
        result = {"role": "tool", "content": call_tool(functions, call)}
        name = call.get("function", call).get("name")
        if isinstance(name, str):
            result["name"] = name
        results.append(result)
    return results


def functions_by_name(tools):
    """{name: function} for a list of Python functions; ValueError for anything else."""
    if not isinstance(tools, (list, tuple)) or not tools or not all(callable(t) for t in tools):
        raise ValueError("tools must be a non-empty list of Python functions, e.g. tools=[add, multiply]; "
                         "run_tools calls them, so JSON schemas alone are not enough")
    return {tool.__name__: tool for tool in tools}


def run_tools(model, tokenizer, chat, tools, max_calls=4, **settings):
    """Answer `chat` with `tools` available: the new messages (tool calls, tool results, the answer).

    Generates with the tools' schemas in the prompt; while the reply calls tools, runs them with
    `call_tool`, appends their results as `tool` messages and generates again. `settings` go to
    `chatkit.reply` (greedy by default). Raises `ToolLoopError` after `max_calls` calls without a
    final answer; `chat` itself is never changed.
    """
    validate_chat(chat)
    functions = functions_by_name(tools)
    if not isinstance(max_calls, int) or isinstance(max_calls, bool) or max_calls < 1:
        raise ValueError(f"max_calls must be a whole number ≥ 1, got {max_calls!r}")
    messages, new, calls = list(chat), [], 0
    while True:
        prefix = tokenizer.apply_chat_template(messages, tools=tools, tokenize=False, add_generation_prompt=True)
        message = parse_reply(tokenizer, reply(model, tokenizer, messages, tools=tools, **settings), prefix)
        new.append(message)
        messages.append(message)
        results = tool_messages(functions, message)
        if not results:
            message.setdefault("content", "")
            return new
        calls += len(results)
        if calls > max_calls:
            raise ToolLoopError(f"the model asked for a tool call {calls} times, more than max_calls={max_calls}, "
                                "without a final answer; pass a larger max_calls, or check that the tools "
                                "return what the model needs", new)
        new += results
        messages += results
