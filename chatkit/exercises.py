"""Exercises: is the learner's answer right? One check for each exercise that ends a notebook.

A check takes what the learner made (a number, a chat, a function, a widget) and says "Right", with
what it confirmed, or "Not yet", with a hint that points at the idea or the call to look at (and the
notebook's section) without giving the answer away. Each check tests the property its exercise asks
for (a chat that alternates, ids with one BOS, a context that fits), so every correct answer passes,
not only the one in `solutions/`. The checks are written in `chatkit.checking`'s pattern, which also
says "Not answered yet" while the notebook's `...` is still there.

Example: `exercises.persona([{"role": "system", "content": "You are a pirate."},
{"role": "user", "content": "Hi!"}])` is `Right: a persona of your own, and a question for it`.
"""

import json
from types import SimpleNamespace

from .catalog import CATALOG
from .chat import validate_chat
from .checking import NotYet, call_answer, check, close, need, token_ids
from .counting import count_parameters
from .generation import reply
from .machine import COMMON_HARDWARE, GiB
from .memory import model_footprint
from .serving import ServerModel
from .sizing import estimate_memory, kv_cache_bytes
from .speed import decode_speed, weight_bytes_per_token


def _valid_chat(chat):
    try:
        validate_chat(chat)
    except ValueError as error:
        raise NotYet(f"not a valid chat: {error}") from None


# ----------------------------------------------------------------------------- 01 quickstart

SASSY_ROBOT = "You are a sassy robot from 1986."


@check
def persona(chat):
    """Exercise 1.1: a system message with a persona of your own, then a question."""
    _valid_chat(chat)
    need(chat[0]["role"] == "system", "start with a system message: it sets how the model behaves (§1.1)")
    need(chat[0]["content"].strip() not in ("", SASSY_ROBOT), "write a persona of your own in the system message")
    need(chat[-1]["role"] == "user", "end with the user's question: the model replies to the last message")
    return "a persona of your own, and a question for it"


@check
def two_turns(chat):
    """Exercise 1.2: the persona chat continued for two turns, ending with the model's reply."""
    _valid_chat(chat)
    need(chat[0]["role"] == "system", "keep your system message first: it holds the persona")
    roles = [m["role"] for m in chat[1:]]
    need(roles.count("assistant") >= 2, "two turns: two replies from the model, with your follow-up between")
    need(
        roles == ["user", "assistant"] * (len(roles) // 2),
        "after the system message, user and assistant take turns, ending with a reply: "
        '`response[0]["generated_text"]` is the chat with the reply appended (§1.5)',
    )
    need(all(m["content"].strip() for m in chat if m["role"] == "assistant"), "a reply is empty")
    return f"{roles.count('assistant')} replies, the turns alternate"


@check
def reply_text(function):
    """Exercise 1.3: a function from what the pipeline returned to the text of its last reply."""
    user = {"role": "user", "content": "Hi!"}
    hey, louvre = ({"role": "assistant", "content": text} for text in ("Hey.", "Go to the Louvre."))
    cases = [
        ([{"generated_text": [user, hey]}], "Hey."),
        (
            [
                {
                    "generated_text": [
                        {"role": "system", "content": "Be brief."},
                        user,
                        hey,
                        {"role": "user", "content": "And Paris?"},
                        louvre,
                    ]
                }
            ],
            "Go to the Louvre.",
        ),
    ]
    for response, expected in cases:
        got = call_answer(function, response)
        need(not isinstance(got, dict), 'return the reply\'s text (its "content"), not the whole message')
        need(got == expected, f"for a response ending in {expected!r} your function returned {got!r} (§1.4)")
    return "the text of the last reply, for a short and a longer chat"


# ----------------------------------------------------------------------------- 02 choosing a model

SMOLLM2 = "HuggingFaceTB/SmolLM2-360M-Instruct"


@check
def count_smollm2(total):
    """Exercise 2.1: SmolLM2-360M-Instruct's parameters counted by hand from its config."""
    entry = CATALOG[SMOLLM2]
    expected = count_parameters(entry).total
    untied = expected + entry.config["vocab_size"] * entry.config["hidden_size"]
    need(isinstance(total, int), "give the count as a whole number of parameters")
    need(not close(total, untied, 0.005), "this config ties its embeddings: the output layer reuses them")
    need(
        close(total, expected, 0.005),
        "not within 0.5%: per layer q, k, v, o (k and v have num_key_value_heads × head_dim outputs), "
        "the MLP's three matrices, two norms; times the layers; plus the embeddings (§2.2)",
    )
    return f"{total:,} parameters (counted from the config: {expected:,})"


@check
def bf16_gigabytes(gb):
    """Exercise 2.2: the bf16 weights of Mistral-7B-Instruct-v0.3, in GB (10^9 bytes) or GiB."""
    params = count_parameters("mistralai/Mistral-7B-Instruct-v0.3").total
    need(isinstance(gb, (int, float)), "give a number of gigabytes")
    need(not close(gb, params / 1e9, 0.05), "that is the parameter count in billions: times the bytes per parameter")
    need(not close(gb, 4 * params / 1e9, 0.05), "that is fp32, 4 bytes per parameter; bf16 takes 2 (§2.3)")
    need(
        close(gb, 2 * params / 1e9, 0.02) or close(gb, 2 * params / GiB, 0.02),
        "not within 2%: parameters × bytes per parameter in bf16, then divide by 10^9 (§2.3)",
    )
    return f"{gb:.1f} ({2 * params / 1e9:.2f} GB = {2 * params / GiB:.2f} GiB)"


@check
def fit_16gb(names, candidates):
    """Exercise 2.3: which `candidates` fit a 16 GB GPU in bf16 with a 4,096-token context."""
    need(not isinstance(names, str), "give a list or set of model names, not one string")
    answer, offered = ({n.rsplit("/", 1)[-1] for n in group} for group in (names, candidates))
    need(answer <= offered, f"only names from the list: {sorted(answer - offered)} are not in it")
    fits = {n for n in offered if estimate_memory(n, "bf16", context_length=4096).fits(16 * GiB)}
    need(
        not answer - fits,
        f"{len(answer - fits)} of your models do not fit: count the KV cache and the "
        "overhead too, not only the weights (§2.6)",
    )
    need(not fits - answer, f"{len(fits - answer)} more of the list fit: `sizing.estimate_memory` says (§2.6)")
    return f"{len(fits)} of {len(offered)} fit in bf16"


# ----------------------------------------------------------------------------- 03 inside the pipeline


@check
def single_bos(ids, tokenizer, text):
    """Exercise 3.1: the ids of `text` (a rendered chat) with exactly one BOS."""
    ids = token_ids(ids)
    bos = tokenizer.bos_token_id
    if bos is not None:  # a tokenizer without a BOS token (Qwen's) has none to double
        leading = next((i for i, token in enumerate(ids) if token != bos), len(ids))
        need(
            leading < 2,
            f"your ids start with {leading} BOS tokens: the rendered chat already begins with "
            "one, so which step adds another, and what tells it not to? (§3.3)",
        )
        need(
            leading == 1,
            "your ids do not start with the BOS token: tokenize the rendered chat itself, which begins with it (§3.3)",
        )
    need(ids == tokenizer(text, add_special_tokens=False)["input_ids"], "these are not the ids of the rendered chat")
    return f"{len(ids)} ids, one BOS, as the template wrote them"


@check
def fold_system(folded, chat):
    """Exercise 3.2: `chat` rewritten for a template without a system role, the instruction kept."""
    _valid_chat(folded)
    need(chat[0]["role"] == "system" and chat[1]["role"] == "user", "fold a chat that starts system, user")
    need(all(m["role"] != "system" for m in folded), "a system message is still there")
    need(folded[0]["role"] == "user", "start with the user's message")
    first = folded[0]["content"]
    need(chat[0]["content"] in first, "the system message's instruction is lost: put it into the first user message")
    need(chat[1]["content"] in first, "the user's first question is lost")
    need(folded[1:] == chat[2:], "keep the rest of the chat as it was")
    return "no system message, its instruction in the first user message (§3.7)"


@check
def greedy_reply(text, model, tokenizer, chat):
    """Exercise 3.3: the greedy reply to `chat`, 32 new tokens at most, made in the five steps."""
    expected = reply(model, tokenizer, chat, max_new_tokens=32)
    need(isinstance(text, str), "pass the decoded text of the reply")
    need(not (text.endswith(expected) and text != expected), "your text holds the prompt: decode only the new tokens")
    mine, greedy = text.strip(), expected.strip()
    need(
        not (mine and greedy.startswith(mine) and mine != greedy),
        "not the greedy reply: yours is its start, then stops: how many new tokens may `generate` write? (§3.1)",
    )
    need(
        not (greedy and mine.startswith(greedy) and mine != greedy),
        "not the greedy reply: yours goes on after its end: look again at steps 4 and 5 of §3.1",
    )
    need(
        mine == greedy,
        "not the greedy reply: does your prompt end where the assistant's reply begins "
        "(step 2 of §3.1), and does `generate` take the most likely token each time (§3.2)?",
    )
    return "the same reply as the pipeline's greedy one"


# ----------------------------------------------------------------------------- 04 memory

MISTRAL_7B = "mistralai/Mistral-7B-Instruct-v0.3"
LLAMA_70B = "meta-llama/Llama-3.1-70B-Instruct"


@check
def kv_cache_per_token(nbytes):
    """Exercise 4.1: bytes of KV cache one token takes in Mistral-7B-Instruct-v0.3, bf16."""
    expected = kv_cache_bytes(MISTRAL_7B, 1, dtype="bf16")
    need(isinstance(nbytes, (int, float)), "give a number of bytes")
    need(not close(nbytes, expected / 2, 0.01), "keys and values: two tensors per layer")
    need(not close(nbytes, expected * 4, 0.01), "count the key/value heads (num_key_value_heads), not the query heads")
    need(close(nbytes, expected, 0.01), "2 × layers × key/value heads × head_dim × bytes per value (§4.8)")
    return f"{expected:,} bytes per token"


@check
def four_bit_ratio(model, ratio):
    """Exercise 4.2: a model loaded in 4-bit, and how many times smaller than bf16 it is."""
    need(getattr(model, "is_loaded_in_4bit", False), "load the model with BitsAndBytesConfig(load_in_4bit=True) (§4.4)")
    bf16 = 2 * count_parameters(model.config).total
    measured = [bf16 / model_footprint(model), bf16 / model.get_memory_footprint()]
    need(isinstance(ratio, (int, float)) and ratio > 0, "give the ratio as a positive number")
    need(
        ratio > 1 or not any(close(1 / ratio, m, 0.05) for m in measured),
        "upside down: divide the bf16 footprint by the 4-bit one",
    )
    need(
        any(close(ratio, m, 0.05) for m in measured),
        "not what this model measures: footprint in bf16 ÷ footprint in 4-bit (§4.5)",
    )
    return f"{ratio:.2f} times smaller, not 4: the quiz of notebook 04 asks why"


def _fits_a100(tokens):
    return estimate_memory(LLAMA_70B, "4bit", context_length=tokens).fits(COMMON_HARDWARE[2])  # A100/H100 80GB


@check
def longest_context(tokens):
    """Exercise 4.3: about the longest context Llama-3.1-70B-Instruct in 4-bit has on an 80 GB GPU."""
    need(isinstance(tokens, int) and tokens > 0, "give a whole number of tokens")
    need(_fits_a100(tokens), "that context does not fit: `sizing.estimate_memory` says more than 80 GiB (§4.8)")
    need(not _fits_a100(int(tokens * 1.05) + 1), "a context 5% longer still fits: search further up")
    return f"{tokens:,} tokens fit, 5% more would not"


# ----------------------------------------------------------------------------- 05 performance


@check
def predicted_rate(prediction, gb_per_s, model):
    """Exercise 5.1: tokens/s the bandwidth rule predicts for `model` from `gb_per_s`."""
    expected = gb_per_s * 1e9 / weight_bytes_per_token(model)
    need(isinstance(prediction, (int, float)), "give tokens per second as a number")
    need(not close(prediction, expected / 1e9, 0.1), "the bandwidth is in GB/s: times 10^9 for bytes per second")
    need(close(prediction, expected, 0.1), "bytes per second ÷ bytes of weights read per token (§5.1)")
    return "the rule's ceiling for this model at this bandwidth"


def _prompt(tokenizer, content):
    chat = [{"role": "user", "content": content}]
    return tokenizer.apply_chat_template(chat, add_generation_prompt=True, return_dict=True, return_tensors="pt")


@check
def measured_rate(tokens_per_s, model, tokenizer):
    """Exercise 5.2: tokens/s of a `generate` call for 32 new tokens; re-measured here, within 2.5×."""
    ids = _prompt(tokenizer, "What is the KV cache?")["input_ids"].to(model.device)
    measured = decode_speed(model, ids, new_tokens=32, repeats=1)[0]
    here = measured.new_tokens / measured.total_s  # the whole call, prompt included, as the exercise times it
    need(isinstance(tokens_per_s, (int, float)) and tokens_per_s > 0, "give tokens per second as a number")
    need(
        here / 2.5 <= tokens_per_s <= here * 2.5,
        "far from what this check measures: count only the new "
        "tokens and divide by the seconds `generate` took (time.perf_counter before and after)",
    )
    return "within 2.5× of what this check measured"


@check
def assisted_kwargs(kwargs, model, tokenizer):
    """Exercise 5.3: `generate` arguments that turn on prompt lookup or a draft model, same tokens."""
    need(isinstance(kwargs, dict), "a dict of keyword arguments for `generate`")
    need(
        kwargs.get("prompt_lookup_num_tokens") or kwargs.get("assistant_model") is not None,
        "turn on prompt lookup (prompt_lookup_num_tokens) or a draft (assistant_model) (§5.5)",
    )
    need(not kwargs.get("do_sample"), "keep greedy decoding (do_sample=False): the lesson is the same tokens, sooner")
    inputs = _prompt(
        tokenizer, "What is a KV cache? A KV cache keeps the keys and values of earlier tokens. What is a KV cache?"
    ).to(model.device)
    plain = model.generate(**inputs, max_new_tokens=32, do_sample=False)
    assisted = model.generate(**inputs, **{"max_new_tokens": 32, "do_sample": False, **kwargs})
    need(assisted.tolist() == plain.tolist(), "other tokens than greedy decoding: keep do_sample=False")
    return "assisted decoding, exactly the greedy tokens"


# ----------------------------------------------------------------------------- 06 chat app


def _widget(chatbox):
    need(all(hasattr(chatbox, a) for a in ("system_prompt", "decoding", "history")), "pass the ChatWidget")


@check
def widget_settings(chatbox):
    """Exercise 6.1: a window that answers as a pirate, greedy, in at most 32 new tokens."""
    _widget(chatbox)
    need("pirate" in chatbox.system_prompt.value.lower(), "the system field should make it a pirate")
    need(chatbox.max_new_tokens.value == 32, "at most 32 new tokens: the max_new_tokens field")
    need(chatbox.decoding.value == "greedy", "greedy decoding: the decoding buttons")
    return "a greedy pirate, 32 new tokens at most"


@check
def widget_conversation(chatbox, model, tokenizer):
    """Exercise 6.2: two questions sent from code; the last reply is the model's greedy reply."""
    _widget(chatbox)
    history = chatbox.history
    need([m["role"] for m in history if m["role"] != "system"].count("user") >= 2, "send two messages")
    need(history[-1]["role"] == "assistant", "wait for the reply: `chatbox.wait()` after `send` (§6.2)")
    if chatbox.decoding.value == "greedy":
        expected = reply(model, tokenizer, history[:-1], max_new_tokens=chatbox.max_new_tokens.value)
        need(history[-1]["content"] == expected, "the last reply is not the model's: was the history edited?")
    return f"{len(history)} messages, the last one the model's reply"


@check
def widget_sampling(chatbox):
    """Exercise 6.3: the window switched to sampling at temperature 0.7, from code."""
    _widget(chatbox)
    need(chatbox.decoding.value == "sample", "switch the decoding buttons to sample")
    need(abs(chatbox.temperature.value - 0.7) < 0.01, "set the temperature slider's value to 0.7")
    need(chatbox.settings.get("do_sample"), "the next reply would not sample")
    return "the next reply samples at temperature 0.7"


# ----------------------------------------------------------------------------- 07 tools


@check
def tool_schema(function):
    """Exercise 7.1: a typed, documented function of your own that `get_json_schema` reads."""
    from transformers.utils import get_json_schema

    need(callable(function), "pass the function itself")
    need(function.__name__ not in ("add", "subtract", "multiply", "city_facts"), "write a tool of your own")
    try:
        schema = get_json_schema(function)
    except Exception as error:  # transformers' own message says what is missing
        raise NotYet(f"get_json_schema refused it: {error} (§7.1)") from None
    properties = schema["function"]["parameters"]["properties"]
    need(properties, "a tool takes at least one argument")
    undocumented = [name for name, p in properties.items() if not p.get("description")]
    need(not undocumented, f"describe {undocumented} under Args: in the docstring")
    return f"{schema['function']['name']}({', '.join(properties)}), every argument typed and described"


@check
def tool_conversation(messages):
    """Exercise 7.2: a call, its result and the answer, as `run_tools` returns them."""
    need(isinstance(messages, list), "pass the list of messages `chatkit.run_tools` returned (§7.5)")
    roles = [("call" if m.get("tool_calls") else m.get("role")) for m in messages]
    need("call" in roles, "no tool call: ask something the calculator answers, with tools=tools")
    need("tool" in roles[roles.index("call") :], 'the call\'s result is missing: a message with role "tool"')
    need(roles[-1] == "assistant" and messages[-1].get("content"), "end with the model's answer")
    return "a call, its result, then the answer"


@check
def parse_json(function):
    """Exercise 7.3: a function from a model's reply to the JSON object in it, or None."""
    cases = [
        ('{"city": "Paris"}', {"city": "Paris"}),
        ('Sure!\n```json\n{"a": 1, "b": [1, 2]}\n```', {"a": 1, "b": [1, 2]}),
        ('Here it is: {"name": "Rome", "country": "Italy"}. Enjoy!', {"name": "Rome", "country": "Italy"}),
        ("There is no JSON here.", None),
        ('{"city": ', None),
    ]
    for text, expected in cases:
        got = call_answer(function, text)
        need(got == expected, f"for {text!r} your function returned {got!r}, expected {json.dumps(expected)}")
    return "plain, fenced and embedded JSON read; None where there is none"


# ----------------------------------------------------------------------------- 08 serving


def _server_reply(url, model_id, messages):
    """The server's greedy reply, at most 64 tokens, through chatkit's own client (notebook 08 §8.4)."""
    return reply(ServerModel(url, model_id), None, messages, max_new_tokens=64)


@check
def streamed_reply(text, question, url, model_id):
    """Exercise 8.1: the streamed pieces of the reply to `question`, joined, are the whole reply."""
    need(isinstance(text, str) and text, "join the pieces into one string")
    expected = _server_reply(url, model_id, [{"role": "user", "content": question}])
    need(
        text == expected,
        "not the server's reply: stream=True, temperature=0, max_tokens=64, "
        "and keep every piece's delta.content (§8.2)",
    )
    return "the pieces add up to the whole reply"


@check
def tokens_per_second(function):
    """Exercise 8.2: a function from a completion and the seconds it took to its tokens/s."""
    for tokens, prompt, seconds in [(32, 20, 2.0), (10, 200, 0.5)]:
        usage = SimpleNamespace(completion_tokens=tokens, prompt_tokens=prompt, total_tokens=tokens + prompt)
        got = call_answer(function, SimpleNamespace(usage=usage), seconds)
        need(not close(got, (tokens + prompt) / seconds, 1e-6), "count the reply's tokens only, not the prompt's")
        need(close(got, tokens / seconds, 1e-6), "completion.usage says how many tokens the reply had")
    return "the reply's tokens per second, from usage"


@check
def follow_up(chat, url, model_id):
    """Exercise 8.3: a question, the server's reply, a follow-up, and its reply: the whole chat sent."""
    _valid_chat(chat)
    need(
        [m["role"] for m in chat] == ["user", "assistant", "user", "assistant"],
        "four messages: a question, the reply, a follow-up, the reply",
    )
    need(chat[1]["content"] == _server_reply(url, model_id, chat[:1]), "the first reply is not the server's")
    need(
        chat[3]["content"] == _server_reply(url, model_id, chat[:3]),
        "the second reply is not the server's to the whole chat: the server keeps no history, send it all",
    )
    return "the server answered the follow-up with the whole chat"
