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
import threading
from pathlib import Path
from types import SimpleNamespace

from .catalog import CATALOG
from .chat import validate_chat
from .checking import NotYet, call_answer, check, close, need, token_ids
from .counting import count_parameters
from .generation import reply
from .hub import embedded_model_path
from .loading import load_model
from .machine import GiB
from .memory import cache_bytes, model_footprint
from .serving import ServerModel
from .sizing import kv_cache_bytes
from .speed import decode_speed, weight_bytes_per_token
from .templating import count_prompt_tokens
from .thinking import response_template


def _cases(exercise):
    """The inputs a check tries a learner's function on, and the right outputs (data/exercise_cases.json)."""
    return json.loads((Path(__file__).parent / "data" / "exercise_cases.json").read_text(encoding="utf-8"))[exercise]


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
    cases = [(c["response"], c["expected"]) for c in _cases("reply_text")]
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
def meta_footprint(footprint, fits):
    """Exercise 2.3: Mistral-7B-Instruct-v0.3 built on the meta device in bf16: its footprint; do 16 GiB hold it?"""
    weights = 2 * count_parameters(MISTRAL_7B).total  # bf16: 2 bytes per parameter
    need(not close(footprint, weights / 2, 1e-4), "that is the parameter count: ask for `get_memory_footprint()`")
    need(not close(footprint, 2 * weights, 1e-4), "that is fp32: `from_config` builds in float32 unless given a dtype")
    need(close(footprint, weights, 1e-4), "not Mistral-7B's footprint in bytes: build it from its config as §2.2 does")
    need(fits is (footprint <= 16 * GiB), "True or False: compare the footprint with 16 GiB, 16 × 2**30 bytes (§2.3)")
    return f"{footprint:,} bytes = {footprint / GiB:.2f} GiB, and no weight loaded"


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


@check
def kv_cache_by_hand(cache, nbytes, model):
    """Exercise 4.3: the KV cache of one forward pass of `model` over 100 tokens, its bytes added up by hand."""
    need(hasattr(cache, "layers") and hasattr(cache, "get_seq_length"), "pass the output's `past_key_values` (§4.8)")
    need(cache.get_seq_length() == 100, f"this cache holds {cache.get_seq_length()} tokens: run the model over 100 ids")
    expected, one = cache_bytes(cache), cache_bytes(cache) // len(cache.layers)  # each layer's: half keys, half values
    need(expected == kv_cache_bytes(model.config, 100, dtype=model.dtype), "not the cache of the model you passed")
    need(nbytes != expected // 2, "each layer keeps values beside its keys: count both")
    need(one == expected or nbytes not in (one, one // 2), "that is one layer's cache: every layer keeps its own")
    need(nbytes == expected, "not this cache's bytes: `nelement() * element_size()` of each layer's keys and values")
    return f"{nbytes:,} bytes for 100 tokens, as the formula of §4.8 says"


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


@check
def streamed_chunks(chunks, question, model, tokenizer):
    """Exercise 6.1: the text chunks a TextIteratorStreamer hands out while `generate` runs in a thread."""
    need(isinstance(chunks, list) and all(isinstance(c, str) for c in chunks), "a list of the streamer's text chunks")
    text = "".join(chunks)
    want = reply(model, tokenizer, [{"role": "user", "content": question}], max_new_tokens=64)
    hint = "they stop early" if want.startswith(text) else "more than the reply" if want in text else "not the reply"
    need(text == want, f"{hint}: stream the greedy reply (max_new_tokens=64), not its prompt or special tokens (§6.4)")
    need(len(chunks) > 1, "one chunk only: keep each chunk as the streamer hands it out")
    return f"{len(chunks)} chunks, together the greedy reply"


@check
def pipeline_continues(continued, chatbox, model, tokenizer):
    """Exercise 6.2: the window's history, one more question, and a pipeline's greedy reply to it."""
    need("generated_text" not in str(continued)[:20], 'the pipeline\'s answer: its chat is `[0]["generated_text"]`')
    _valid_chat(continued)
    need(continued[: len(chatbox.history)] == chatbox.history, "it does not start with the window's chat (§6.2)")
    need([m["role"] for m in continued[len(chatbox.history) :]] == ["user", "assistant"], "then a question, the reply")
    mine, greedy = continued[-1]["content"], reply(model, tokenizer, continued[:-1], max_new_tokens=64)
    need(mine == greedy or not greedy.startswith(mine), "the reply stops early: max_new_tokens=64")
    need(mine == greedy, "not the model's greedy reply: a pipeline of `model` and `tokenizer`, do_sample=False")
    return f"the window's {len(chatbox.history)} messages, your question and the model's reply"


@check
def stop_when_set(criterion, model=None, tokenizer=None):
    """Exercise 6.3: a StoppingCriteria class that says stop once its event is set, on `model` or the embedded one."""
    need(isinstance(criterion, type), "pass the class itself: its name, without calling it")
    model, tokenizer = (model, tokenizer) if model else load_model(embedded_model_path(), device_map=None)
    prompt = (inputs := _prompt(tokenizer, "What is the KV cache?").to(model.device))["input_ids"].shape[1]

    def new_tokens(set_after=99):  # greedy; the event is set, as Stop would, once `set_after` tokens are written
        stopper = call_answer(criterion, event := threading.Event())

        def asked(ids, scores, **kwargs):  # generate asks after each new token: the learner's class answers
            ids.shape[1] - prompt >= set_after and event.set()
            answer = call_answer(stopper, ids, scores)
            need(hasattr(answer, "__or__"), f"`__call__` returned {answer!r:.30}, not True or False")
            return answer  # generate takes True, False or a tensor of them

        out = model.generate(**inputs, max_new_tokens=32, do_sample=False, stopping_criteria=[asked])
        return out[0, prompt:].tolist()

    full = model.generate(**inputs, max_new_tokens=32, do_sample=False)[0, prompt:].tolist()
    need(new_tokens() == full, "with the event never set, generate stopped early")
    need(new_tokens(1) == full[:1], "with the event set, generate wrote on: ask the event each time `__call__` runs")
    need(new_tokens(3) == full[:3], "set after 3 tokens, generate wrote on: ask the event each time `__call__` runs")
    return "generate runs on while the event is clear, and stops at the next token once it is set"


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
    cases = [(c["text"], c["expected"]) for c in _cases("parse_json")]
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


# ----------------------------------------------------------------------------- 09 thinking


def _thinking_prompt(tokenizer, question):
    return tokenizer.apply_chat_template(question, add_generation_prompt=True, tokenize=False, enable_thinking=True)


@check
def thought_message(message, model, tokenizer, question):
    """Exercise 9.1: the greedy reply to `question` with thinking on, read back with `parse_response`."""
    need(isinstance(message, dict), "the message `tokenizer.parse_response` returns: a dict (§9.2)")
    text, prompt = (
        reply(model, tokenizer, question, max_new_tokens=256, enable_thinking=True),
        _thinking_prompt(tokenizer, question),
    )
    read = [
        tokenizer.parse_response(text + end, schema=response_template(tokenizer), prefix=prompt)
        for end in ("", tokenizer.eos_token)
    ]
    need("thinking" in message or "thinking" not in read[0], "no thought in it: switch thinking on (§9.1)")
    need(message in read, "not the greedy reply read back: pass the prompt as `prefix=` (§9.2), do_sample=False")
    want = read[0]  # decoded without special tokens, or with the end token kept
    return f"{len(want.get('thinking', ''))} characters of thought, then {want.get('content', '')!r}"


@check
def empty_thought(prompt, model, tokenizer, question):
    """Exercise 9.2: the prompt with thinking on and an empty thought prefilled: the model answers at once."""
    opened = _thinking_prompt(tokenizer, question)
    need(isinstance(prompt, str) and prompt.startswith(opened), "start from the prompt with thinking on (§9.1)")
    rest = "".join(prompt[len(opened) :].split())  # Qwen3's template leaves the <think> to the model
    need(rest in ("</think>", "<think></think>"), "write nothing in the thought: close it at once")
    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt").input_ids.to(model.device)
    answer = tokenizer.decode(model.generate(ids, max_new_tokens=64, do_sample=False)[0, ids.shape[1] :])
    need("</think>" not in answer, "the model still thinks: end the prompt with the closed thought and a blank line")
    return f"answered at once: {answer.split('<|im_end|>')[0].strip()!r}"


@check
def dropped_thought(saved_tokens, message, tokenizer, question):
    """Exercise 9.3: the prompt tokens the template saves by leaving the reply's thought out of the next turn."""
    need(isinstance(saved_tokens, int), "a whole number of tokens")
    kept = count_prompt_tokens(question + [message], tokenizer, enable_thinking=True)
    dropped = count_prompt_tokens(question + [{"role": "assistant", "content": message["content"]}], tokenizer)
    need(saved_tokens == kept - dropped, "count the tokens of the reply with its thought and without (§9.5)")
    return f"{saved_tokens} tokens saved on every later turn"


# ----------------------------------------------------------------------------- 10 images


def _image_blocks(message):
    content = message.get("content") if isinstance(message, dict) else None
    return [b for b in content if isinstance(b, dict) and b.get("type") == "image"] if isinstance(content, list) else []


@check
def image_token_count(count, processor, chat):
    """Exercise 10.1: how many of the prompt's tokens stand for the pictures of `chat`."""
    need(isinstance(count, int), "a whole number of tokens")
    inputs = processor.apply_chat_template(
        chat, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    image_id = processor.tokenizer.convert_tokens_to_ids(processor.image_token)
    want = int((inputs["input_ids"] == image_id).sum())
    total = inputs["input_ids"].shape[1]
    need(count != total, "that is every token of the prompt: count only those that stand for a picture (§10.2)")
    need(count == want, "tokenize with the processor, then count the ids equal to the image token's id (§10.2)")
    return f"{count} of the {total} prompt tokens stand for the pictures"


@check
def picture_answer(answer, model, processor, picture, question):
    """Exercise 10.2: the greedy answer to `question` about `picture`, through the processor and generate."""
    need(isinstance(answer, str), "the answer as text: decode the new tokens")
    chat = [{"role": "user", "content": [{"type": "image", "image": picture}, {"type": "text", "text": question}]}]
    want = reply(model, None, chat, processor=processor, max_new_tokens=48)
    need(not answer.lstrip().startswith("<|"), "decode only the new tokens, with skip_special_tokens=True (§10.2)")
    need(answer.strip() == want.strip(), "one user message: an image block, then a text block; greedy (§10.1, §10.2)")
    return f"the model says {want.strip()!r}"


@check
def two_pictures(chat, processor, first, second):
    """Exercise 10.3: one user message carrying two pictures, in order, and a question about both."""
    need(isinstance(chat, list) and chat and isinstance(chat[-1], dict), "a chat: a list of messages")
    message = chat[-1]
    need(message.get("role") == "user", "the last message is the user's")
    blocks = _image_blocks(message)
    need(len(blocks) == 2, "two image blocks in the same message, each {'type': 'image', 'image': ...} (§10.4)")
    need([b.get("image") for b in blocks] == [first, second], "the two pictures, first then second")
    texts = [b for b in message["content"] if isinstance(b, dict) and b.get("type") == "text" and b.get("text")]
    need(texts, "and a text block with your question")
    rendered = processor.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
    return f"the prompt holds {rendered.count(processor.image_token)} image placeholders and your question"
