"""Chat templates and the mistakes around them: double BOS, rejected system messages, long chats.

A chat template (Jinja, stored with the tokenizer) turns a list of messages into the exact text a
model was trained on. This module helps with what goes wrong around it:

- `check_single_bos()`: a template that writes the BOS token, tokenized again with
  `add_special_tokens=True`, starts with two BOS tokens; this says so, and how to fix it;
- `apply_template_with_fallback()`: some templates (Gemma's, Mistral-instruct's) reject a system
  message; this folds it into the first user message and tells the reader it did;
- `fit_to_context()`: drops the oldest turns of a chat (never the system message) until the prompt
  fits the model's context window, and says how many messages it dropped;
- `neutralize_special_tokens()`: text you did not write (a user's message, a tool's result, a web
  page) with every control-token string in it broken, so that tokenizing the rendered prompt cannot
  turn `<|im_end|><|im_start|>system` typed in it into the model's real control tokens;
- `without_tool_branches()`: a template's source without the branches that write tools, to read what
  it does with plain messages;
- `FAMILY_TEMPLATES`: the prompt formats of five model families (ChatML, Llama 3, Mistral-instruct,
  Gemma, Zephyr), written from each format's documented structure as Jinja templates, to render
  with transformers' own `tokenizer.apply_chat_template(chat, chat_template=...)`. Each writes its
  family's own special tokens literally, so the rendering shows the format whatever tokenizer
  renders it.

Example:
    >>> import chatkit
    >>> tokenizer = chatkit.load_tokenizer(chatkit.embedded_model_path())
    >>> print(tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False,
    ...       chat_template=FAMILY_TEMPLATES["gemma"], add_generation_prompt=True))
    <bos><start_of_turn>user
    Hi<end_of_turn>
    <start_of_turn>model
    <BLANKLINE>
"""

import re
from itertools import accumulate

from .chat import message_text, validate_chat

# Shared by the templates below. `text(content)`: a message's text, whether its content is a string or a
# list of typed blocks (the text blocks joined; images and other blocks have no text to show) or absent.
_TEXT = (
    "{% macro text(content) %}"
    "{% if content is string %}{{ content }}"
    "{% elif content is iterable %}{% for block in content if block['type'] == 'text' %}{{ block['text'] }}{% endfor %}"
    "{% endif %}"
    "{% endmacro %}"
)
# Families whose format has no tool calls refuse them rather than drop them without a word.
_NO_TOOL_CALLS = (
    "{% if message['tool_calls'] is defined and message['tool_calls'] %}"
    "{{ raise_exception('This format has no tool calls: render a chat with tool calls with the model\\'s own "
    'chat template (tokenizer.apply_chat_template(chat, tools=...)) or with FAMILY_TEMPLATES["llama-3"]\') }}'
    "{% endif %}"
)

# ChatML (OpenAI's format, used by Qwen, SmolLM and others): <|im_start|>role\ncontent<|im_end|>\n
# for every role including system; the generation prompt opens an assistant turn. No BOS.
CHATML = _TEXT + (
    "{% for message in messages %}"
    + _NO_TOOL_CALLS
    + "{{ '<|im_start|>' + message['role'] + '\\n' + text(message['content']) + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# Llama 3: <|begin_of_text|> once, then per message a header <|start_header_id|>role<|end_header_id|>,
# a blank line, the content (trimmed) and <|eot_id|>. System messages are supported. Tool calls as
# Llama 3.1 writes them: the assistant's message is the call as JSON, {"name": ..., "parameters": {...}},
# one call per message, and the tool's result comes back under the role "ipython".
LLAMA_3 = _TEXT + (
    "{{ '<|begin_of_text|>' }}"
    "{% for message in messages %}"
    "{% set role = 'ipython' if message['role'] == 'tool' else message['role'] %}"
    "{{ '<|start_header_id|>' + role + '<|end_header_id|>\\n\\n' }}"
    "{% if message['tool_calls'] is defined and message['tool_calls'] %}"
    "{% if message['tool_calls'] | length > 1 %}"
    "{{ raise_exception('Llama 3 writes one tool call per assistant message: split the calls into assistant "
    "messages of one call each, each followed by its tool result') }}"
    "{% endif %}"
    "{% set call = message['tool_calls'][0]['function'] if message['tool_calls'][0]['function'] is defined "
    "else message['tool_calls'][0] %}"
    "{{ '{\"name\": \"' + call['name'] + '\", \"parameters\": ' }}"
    "{{ call['arguments'] if call['arguments'] is string else call['arguments'] | tojson }}{{ '}' }}"
    "{% else %}{{ text(message['content']) | trim }}{% endif %}"
    "{{ '<|eot_id|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)

# Mistral-instruct (v0.1/v0.2): <s>[INST] user [/INST]assistant</s>[INST] ... ; roles must alternate
# user/assistant and there is no system role (the template raises). [/INST] is itself the prompt for
# the reply, so add_generation_prompt changes nothing.
MISTRAL_INSTRUCT = _TEXT + (
    "{{ '<s>' }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}"
    "{{ raise_exception('System role not supported: Mistral-instruct only has user and assistant turns') }}"
    "{% endif %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}"
    + _NO_TOOL_CALLS
    + "{% if message['role'] == 'user' %}{{ '[INST] ' + text(message['content']) + ' [/INST]' }}"
    "{% else %}{{ text(message['content']) + '</s>' }}{% endif %}"
    "{% endfor %}"
)

# Gemma: <bos>, then <start_of_turn>role\ncontent<end_of_turn>\n with the assistant's role named
# "model"; no system role (the template raises); roles must alternate.
GEMMA = _TEXT + (
    "{{ '<bos>' }}"
    "{% if messages[0]['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}"
    "{% endif %}"
    "{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}" + _NO_TOOL_CALLS + "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{ '<start_of_turn>' + role + '\\n' + text(message['content']) | trim + '<end_of_turn>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}"
)

# Zephyr: <|role|>\ncontent</s>\n for system, user and assistant; the prompt opens <|assistant|>.
ZEPHYR = _TEXT + (
    "{% for message in messages %}"
    + _NO_TOOL_CALLS
    + "{{ '<|' + message['role'] + '|>\\n' + text(message['content']) + '</s>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)

FAMILY_TEMPLATES = {
    "chatml": CHATML,
    "llama-3": LLAMA_3,
    "mistral-instruct": MISTRAL_INSTRUCT,
    "gemma": GEMMA,
    "zephyr": ZEPHYR,
}


def _as_id_rows(input_ids):
    """input_ids (list, nested list, tensor, array, BatchEncoding/dict) as a list of lists of ints."""
    if hasattr(input_ids, "keys") and "input_ids" in input_ids.keys():  # a BatchEncoding or dict
        input_ids = input_ids["input_ids"]
    if hasattr(input_ids, "tolist"):
        input_ids = input_ids.tolist()
    if not isinstance(input_ids, (list, tuple)):
        raise ValueError(f"input_ids must be a list of token ids or a tensor, got {type(input_ids).__name__}")
    if input_ids and isinstance(input_ids[0], (list, tuple)):
        return [list(row) for row in input_ids]
    return [list(input_ids)]


def check_single_bos(input_ids, tokenizer):
    """Check that each row of `input_ids` starts with exactly one BOS token; return a one-line verdict.

    Left padding is skipped. Raises ValueError, saying how to fix it, when a row starts with two or
    more BOS tokens (the template wrote one, tokenizing added another) or with none. A tokenizer
    without a BOS token (Qwen's, for one) passes with a verdict that says so.
    """
    bos = tokenizer.bos_token_id
    if bos is None:
        return "this tokenizer has no BOS token: nothing to check"
    pad = tokenizer.pad_token_id
    rows = _as_id_rows(input_ids)
    for index, row in enumerate(rows):
        start = 0
        while pad is not None and pad != bos and start < len(row) and row[start] == pad:
            start += 1
        leading = 0
        while start + leading < len(row) and row[start + leading] == bos:
            leading += 1
        where = f"row {index} of the input ids" if len(rows) > 1 else "the input ids"
        if leading > 1:
            raise ValueError(
                f"{where} start with {leading} BOS tokens ({tokenizer.bos_token!r}); the model was trained with "
                "one. The chat template already writes BOS and tokenizing its text added another: tokenize "
                "with add_special_tokens=False, or let apply_chat_template(..., tokenize=True) do both steps"
            )
        if leading == 0:
            raise ValueError(
                f"{where} do not start with the BOS token ({tokenizer.bos_token!r}); build the prompt with the "
                "model's chat template (apply_chat_template), which writes BOS where the model expects it"
            )
    return f"ok: exactly one BOS ({tokenizer.bos_token!r}) at the start"


def fold_system_message(chat):
    """A copy of `chat` with the system message merged into the first user message (blank line between).

    With no user message right after the system message, the system text becomes a user message.
    A chat without a system message is returned as a copy, unchanged.
    """
    validate_chat(chat)
    chat = [dict(message) for message in chat]
    if chat[0]["role"] != "system":
        return chat
    system, rest = chat[0], chat[1:]
    text = message_text(system)
    if rest and rest[0]["role"] == "user":
        content = rest[0]["content"]
        rest[0]["content"] = (
            text + "\n\n" + content
            if isinstance(content, str)
            else [{"type": "text", "text": text + "\n\n"}] + list(content)
        )
        return rest
    return [{"role": "user", "content": text}] + rest


def apply_template_with_fallback(tokenizer, chat, announce=True, **kwargs):
    """`tokenizer.apply_chat_template(chat, **kwargs)`, folding the system message in if the template rejects it.

    Returns `(result, folded)`: what apply_chat_template returned, and whether the system message was
    folded into the first user message. When it folds and `announce` is true, prints a note saying so.
    If the template also rejects the folded chat, the template's original error is raised.
    """
    from jinja2.exceptions import TemplateError

    validate_chat(chat)
    try:
        return tokenizer.apply_chat_template(chat, **kwargs), False
    except TemplateError as error:
        if chat[0]["role"] != "system":
            raise
        original = error
    try:
        result = tokenizer.apply_chat_template(fold_system_message(chat), **kwargs)
    except TemplateError:
        raise original from None
    if announce:
        print(
            f"note: the chat template rejected the system message ({original}); "
            "it was folded into the first user message instead"
        )
    return result, True


def count_prompt_tokens(chat, tokenizer, **template_kwargs):
    """How many tokens `chat` takes once rendered by the tokenizer's chat template (generation prompt on)."""
    template_kwargs.setdefault("add_generation_prompt", chat[-1]["role"] != "assistant")
    ids = tokenizer.apply_chat_template(chat, tokenize=True, return_dict=False, **template_kwargs)
    return len(ids)


def _turn_starts(chat, first):
    """Indices from `first` on where a turn begins: each user message opens one."""
    return [i for i in range(first, len(chat)) if chat[i]["role"] == "user"]


def _estimated_first_fit(body, cuts, tokenizer, used, budget):
    """The index in `cuts` of the first chat estimated to fit in `budget` tokens (the last when none is).

    Each message's text is tokenized once (one batch); the template's markup is measured on the two
    shortest candidates: what it adds per message, and what it adds once per prompt (BOS, generation
    prompt, tool schemas). Cumulative sums then estimate every candidate at once.
    """
    sizes = [len(ids) for ids in tokenizer([message_text(m) for m in body], add_special_tokens=False)["input_ids"]]
    kept = list(accumulate(reversed(sizes)))[::-1] + [0]  # kept[i]: text tokens of body[i:]
    last = cuts[-1]
    per_message = 0
    if len(cuts) > 1:  # the two shortest candidates differ by one turn: its markup, per message
        before = cuts[-2]
        per_message = max(0, (used(before) - used(last) - (kept[before] - kept[last])) / (last - before))
    once = used(last) - kept[last] - per_message * (len(body) - last)  # the system message included

    def estimate(cut):
        return once + kept[cut] + per_message * (len(body) - cut)

    return next((i for i, cut in enumerate(cuts) if estimate(cut) <= budget), len(cuts) - 1)


def fit_to_context(chat, tokenizer, max_tokens, max_new_tokens=0, announce=True, **template_kwargs):
    """Drop the oldest turns of `chat` until its prompt plus `max_new_tokens` fits in `max_tokens`.

    A turn is a user message and everything after it up to the next user message (the assistant's
    reply, tool messages), so replies are never left without their question. The system message and
    the last turn are always kept. Returns `(fitted_chat, dropped)`, the number of messages dropped;
    prints a note saying so when `announce` is true and something was dropped. Raises ValueError
    when even the system message and the last turn do not fit.

    Example:
        >>> import chatkit
        >>> tokenizer = chatkit.load_tokenizer(chatkit.embedded_model_path())
        >>> long_chat = [{"role": "user", "content": "Hello! " * 40}, {"role": "assistant", "content": "Hi."},
        ...              {"role": "user", "content": "What is 2 + 2?"}]
        >>> fitted, dropped = fit_to_context(long_chat, tokenizer, 64, max_new_tokens=16, announce=False)
        >>> dropped, fitted[-1]["content"]
        (2, 'What is 2 + 2?')
    """
    validate_chat(chat)
    if not isinstance(max_tokens, int) or max_tokens < 1:
        raise ValueError(f"max_tokens must be a positive number of tokens, got {max_tokens!r}")
    if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be 0 or more, got {max_new_tokens!r}")
    budget = max_tokens - max_new_tokens
    if budget < 1:
        raise ValueError(
            f"max_new_tokens={max_new_tokens} leaves no room for a prompt in a context of {max_tokens} tokens; "
            "ask for fewer new tokens"
        )
    system = chat[:1] if chat[0]["role"] == "system" else []
    body = chat[len(system) :]
    # Cut points: before each turn, oldest first; keep at least the last turn (or the whole body if it
    # has no user message to cut at).
    cuts = [0] + [s for s in _turn_starts(body, 0) if s > 0]
    counted = {}

    def used(cut):  # exact: the chat from `cut` on, rendered by the template and tokenized (once per cut)
        if cut not in counted:
            counted[cut] = count_prompt_tokens(system + body[cut:], tokenizer, **template_kwargs)
        return counted[cut]

    # Counting every candidate exactly would render the whole chat once per turn dropped: quadratic, minutes
    # for 10,000 messages. Instead: estimate every candidate from each message's tokens (counted once),
    # take the first that fits, then count exactly only around it, one turn at a time.
    index = _estimated_first_fit(body, cuts, tokenizer, used, budget)
    while index + 1 < len(cuts) and used(cuts[index]) > budget:  # too long yet: drop one more turn
        index += 1
    while index > 0 and used(cuts[index - 1]) <= budget:  # room for one more turn: keep it
        index -= 1
    tokens = used(cuts[index])
    if tokens <= budget:
        fitted = system + body[cuts[index] :]
        dropped = len(chat) - len(fitted)
        if dropped and announce:
            print(
                f"note: dropped the {dropped} oldest messages to fit {tokens} prompt tokens + "
                f"{max_new_tokens} new tokens in {max_tokens}" + (" (the system message was kept)" if system else "")
            )
        return [dict(message) for message in fitted], dropped
    raise ValueError(
        f"even the last turn{' and the system message' if system else ''} take {tokens} tokens, more than the "
        f"{budget} left for the prompt ({max_tokens} - max_new_tokens={max_new_tokens}); shorten them, "
        "ask for fewer new tokens, or use a model with a longer context"
    )


# Inserted after the first character of a control-token string: invisible when printed, and enough for the
# tokenizer, which matches an added token only on its exact characters, to read the rest as plain text.
ZERO_WIDTH_SPACE = "\u200b"


def _control_tokens(tokenizer):
    """{string: id} of the tokenizer's added tokens a text could fake: special or not, longer than one character.

    Whitespace tokens (Gemma's "\\n" runs) and single characters are left out: they are text to a template too.
    """
    return {
        token.content: token_id
        for token_id, token in tokenizer.added_tokens_decoder.items()
        if len(token.content) > 1 and not token.content.isspace()
    }


def neutralize_special_tokens(text, tokenizer):
    """`text` with every control-token string in it broken, so that it tokenizes as plain text.

    A rendered chat is tokenized as one string, so `<|im_end|>\\n<|im_start|>system` inside a user's message
    or a tool's result becomes the same token ids the template writes: a turn the template never wrote.
    Apply this to text you did not write before it goes into a chat, never to the rendered prompt (that would
    break the template's own tokens too). Each added token's string (`<|im_end|>`, and added tokens that are
    not special, such as Qwen's `<tool_call>`) gets a zero-width space after its first character: it prints
    the same, and the model reads its characters. Raises ValueError if the result still tokenizes to one of
    those tokens (a tokenizer whose normalizer drops the space): tokenize that text yourself with
    `tokenizer(text, add_special_tokens=False, split_special_tokens=True)` instead.

    Example:
        >>> import chatkit
        >>> tokenizer = chatkit.load_tokenizer(chatkit.embedded_model_path())
        >>> neutralize_special_tokens("Hi.<|im_end|>", tokenizer)
        'Hi.<\\u200b|im_end|>'
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}; neutralize each message's text")
    controls = _control_tokens(tokenizer)
    if not controls:
        return text
    pattern = re.compile("|".join(re.escape(s) for s in sorted(controls, key=len, reverse=True)))
    result = pattern.sub(lambda match: match[0][0] + ZERO_WIDTH_SPACE + match[0][1:], text)
    left = set(tokenizer(result, add_special_tokens=False)["input_ids"]) & set(controls.values())
    if left:
        names = ", ".join(sorted(repr(s) for s, token_id in controls.items() if token_id in left))
        raise ValueError(
            f"after neutralizing, the text still tokenizes to {names}: this tokenizer does not keep the zero-width "
            "space; tokenize this text with tokenizer(text, add_special_tokens=False, split_special_tokens=True)"
        )
    return result


_IF = re.compile(r"\{%-?\s*if\b(.*?)-?%\}")
_ENDIF = re.compile(r"\{%-?\s*endif\b")
_OTHER_BRANCH = re.compile(r"\{%-?\s*(?:else|elif)\b")
_NAMES_TOOLS = re.compile(r"\btools\b|\btool_calls\b")


def without_tool_branches(template):
    """`template`'s source without its `{% if %}` blocks that write tools, to read what it does with plain messages.

    A block is left out, from its `if` line to the line of its `endif`, when its condition names `tools` or
    `tool_calls` and it has no `else`/`elif` of its own (a block with another branch is kept whole); a Jinja
    comment says how many lines went. Blocks are found line by line, as templates are usually written. For
    a chat without tool calls and no `tools=`, the result renders the same text as `template`.
    """
    kept, block, depth, other_branch = [], [], 0, False
    for line in template.splitlines():
        opened, closed = len(_IF.findall(line)), len(_ENDIF.findall(line))
        if depth:  # inside a block that names tools
            other_branch = other_branch or (depth == 1 and bool(_OTHER_BRANCH.search(line)))
            block.append(line)
            depth += opened - closed
        elif any(_NAMES_TOOLS.search(condition) for condition in _IF.findall(line)):
            block, depth = [line], opened - closed
            other_branch = bool(_OTHER_BRANCH.search(line))
        else:
            kept.append(line)
            continue
        if depth <= 0:  # the block ended on this line
            indent = block[0][: len(block[0]) - len(block[0].lstrip())]
            lines = f"{len(block)} line" + ("s" if len(block) > 1 else "")
            kept += block if other_branch else [f"{indent}{{#- {lines} for tools left out #}}"]
            block, depth = [], 0
    kept += block  # a block never closed: kept as it was
    return "\n".join(kept) + ("\n" if template.endswith("\n") else "")
