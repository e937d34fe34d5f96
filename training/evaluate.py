"""Evaluate a chat model on held-out conversations from the corpus generator (greedy decoding).

For every assistant turn of a held-out conversation, the model gets the conversation up to that
user message (earlier replies are the corpus's own) and writes its reply greedily. Figures:

- factual and arithmetic turns answered correctly (the expected city, country, number...; for
  arithmetic the last number that ends a sentence, i.e. the result after the working);
- persona style present when a persona system prompt is given (pirate: "Arr"/"matey"..., robot:
  "BEEP BOOP"..., terse: short and without "!"); default style (no persona markers) otherwise;
- replies that end with the end-of-turn token before `max_new_tokens`;
- the same prompts without the chat template: the messages' texts joined by newlines, with the
  first line of the continuation taken as the reply.

Usage:
    python -m training.evaluate [--model DIR] [--n 400] [--seed 1000]
"""

import argparse
import json
import random
import time
from pathlib import Path

import torch

from chatkit.held_out import answer_is_correct
from chatkit.tools import call_tool, parse_reply
from training import corpus

EVAL_SEED = 1000  # held-out conversations; training draws from other seeds (see train.py)


def render_chat(messages):
    """The chat template's text, written out in Python (tests check it equals the Jinja template)."""
    text = "<|begin_of_text|>"
    for m in messages:
        text += f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n"
    return text


def render_plain(messages):
    """The same conversation as plain text: no template, no special tokens except the bos."""
    return "<|begin_of_text|>" + "".join(m["content"] + "\n" for m in messages)


def is_correct(turn, reply):
    """True when `reply` contains the turn's expected answer (chatkit.held_out holds the check)."""
    return answer_is_correct(turn.answer, turn.category, reply)


@torch.no_grad()
def generate_reply(model, tokenizer, prompt_text, max_new_tokens):
    """Greedy reply to `prompt_text` (already rendered); returns (text, stopped at the eos token)."""
    ids = tokenizer(prompt_text, add_special_tokens=False, return_tensors="pt").input_ids
    out = model.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=max_new_tokens,
        do_sample=False,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    new = out[0, ids.shape[1] :].tolist()
    stopped = tokenizer.eos_token_id in new
    if stopped:
        new = new[: new.index(tokenizer.eos_token_id)]
    return tokenizer.decode(new, skip_special_tokens=True), stopped


def _tally():
    """A dict of (right, total) per figure name, and the function that counts one more turn into it."""
    counts = {}

    def add(name, ok):
        good, total = counts.get(name, (0, 0))
        counts[name] = (good + bool(ok), total + 1)

    return counts, add


def _figures(counts):
    return {name: (good / total, total) for name, (good, total) in counts.items()}


def evaluate(model, tokenizer, convs, template=True, max_new_tokens=96, progress=None):
    """Figures (fractions in [0, 1]) and the turn counts they are computed over."""
    counts, add = _tally()
    model.eval()
    for conv in convs:
        history = [{"role": "system", "content": conv.system}] if conv.system else []
        for turn in conv.turns:
            history.append({"role": "user", "content": turn.user})
            if template:
                reply, stopped = generate_reply(
                    model, tokenizer, render_chat(history) + "<|im_start|>assistant\n", max_new_tokens
                )
            else:
                reply, stopped = generate_reply(model, tokenizer, render_plain(history), max_new_tokens)
                reply = reply.lstrip("\n").split("\n", 1)[0]
            add("stops", stopped)
            if turn.answer:
                add("correct", is_correct(turn, reply))
                add(turn.category, is_correct(turn, reply))
                if turn.followup:
                    add("followup", is_correct(turn, reply))
            if conv.persona != "default":
                add("persona_style", corpus.has_style(conv.persona, reply, turn.default_reply))
            else:
                add("default_style", corpus.has_style("default", reply, turn.default_reply))
            history.append({"role": "assistant", "content": turn.reply})
        if progress is not None:
            progress.update(1)
    return _figures(counts)


def fits(tokenizer, conv, limit=512):
    """True when the whole conversation, tools included, fits the models' context."""
    text = tokenizer.apply_chat_template(conv.messages, tools=conv.tool_functions, tokenize=False)
    return len(tokenizer(text, add_special_tokens=False, verbose=False).input_ids) <= limit


def tool_conversations(tokenizer, n, seed=EVAL_SEED + 7):
    """`n` held-out conversations with tools that fit the context (seed apart from the chat figures')."""
    convs, rng = [], random.Random(seed)
    while len(convs) < n:
        conv = corpus.tool_conversation(rng=rng)
        if fits(tokenizer, conv):
            convs.append(conv)
    return convs


def evaluate_tools(model, tokenizer, convs, max_new_tokens=96, progress=None):
    """Tool figures on held-out conversations with tools (greedy), as (fraction, turns):

    - call_right: where a listed tool answers the question, the reply is exactly that one call (name
      and arguments); no_call: where none does, the reply calls nothing;
    - answer_with_tools: the final answer after running the model's own call is correct
      (sums, products, city facts, unknown cities reported), and `*_with_tools` / `*_without_tools`:
      the same first questions asked with no tools in the prompt (sums and differences, products);
    - stops: final answers end with the end-of-turn token.
    """
    counts, add = _tally()
    model.eval()
    for conv in convs:
        tools = conv.tool_functions
        history = [{"role": "system", "content": conv.system}] if conv.system else []
        for turn in conv.turns:
            history.append({"role": "user", "content": turn.user})
            prompt = tokenizer.apply_chat_template(history, tools=tools, tokenize=False, add_generation_prompt=True)
            text, stopped = generate_reply(model, tokenizer, prompt, max_new_tokens)
            message = parse_reply(tokenizer, text, prefix=prompt)
            calls = message.get("tool_calls") or []
            if not turn.tool_call:
                add("no_call", not calls and "<tool_call>" not in text)
                if turn.answer:
                    add("answer_without_call", is_correct(turn, text))
            else:
                add("call_right", len(calls) == 1 and calls[0]["function"] == turn.tool_call)
                answer = text
                if calls:
                    after = history + [message, {"role": "tool", "content": call_tool(corpus.TOOLS, calls[0])}]
                    prompt = tokenizer.apply_chat_template(
                        after, tools=tools, tokenize=False, add_generation_prompt=True
                    )
                    answer, stopped = generate_reply(model, tokenizer, prompt, max_new_tokens)
                add("answer_with_tools", is_correct(turn, answer))
                kind = {"multiply": "products"}.get(turn.tool_call["name"], "sums")
                if turn.category == "arithmetic" and not turn.followup:
                    add(f"{kind}_with_tools", is_correct(turn, answer))
                    alone = history[:1] if conv.system else []
                    alone = alone + [{"role": "user", "content": turn.user}]
                    plain, _ = generate_reply(
                        model, tokenizer, render_chat(alone) + "<|im_start|>assistant\n", max_new_tokens
                    )
                    add(f"{kind}_without_tools", is_correct(turn, plain))
            add("stops", stopped)
            history += conv.messages[len(history) : len(history) + (3 if turn.tool_call else 1)]
        if progress is not None:
            progress.update(1)
    return _figures(counts)


def thinking_reply(model, tokenizer, chat, enable_thinking, max_new_tokens=200):
    """Greedy reply with the thinking switch set: (the parsed message, tokens spent thinking, stopped, raw text).

    The tokens spent thinking are those the model wrote before `</think>` (all of them when it never
    closed the thought)."""
    prompt = tokenizer.apply_chat_template(
        chat, tokenize=False, add_generation_prompt=True, enable_thinking=enable_thinking
    )
    text, stopped = generate_reply(model, tokenizer, prompt, max_new_tokens)
    message = parse_reply(tokenizer, text, prefix=prompt)
    thought = text.split("</think>")[0] if enable_thinking else ""
    return message, len(tokenizer(thought, add_special_tokens=False).input_ids), stopped, text


def evaluate_thinking(model, tokenizer, questions, max_new_tokens=200, progress=None):
    """Per question kind (training.thinking.QUESTION_KINDS), thinking on and off, as (value, questions):

    - `<kind>_on` / `<kind>_off`: the answer (the message's content) is right;
    - `<kind>_think_tokens`: mean tokens written before `</think>` with thinking on;
    - `off_no_block`: with thinking off, no `<think>` block is written; `stops`: replies end with the
      end token (both switches).
    """
    counts, add = _tally()
    tokens = {}
    model.eval()
    for q in questions:
        for on in (True, False):
            message, spent, stopped, text = thinking_reply(model, tokenizer, q["chat"], on, max_new_tokens)
            add(
                f"{q['kind']}_{'on' if on else 'off'}",
                answer_is_correct(q["answer"], q["category"], message.get("content", "")),
            )
            add("stops", stopped)
            if on:
                tokens.setdefault(q["kind"], []).append(spent)
            else:
                add("off_no_block", "<think>" not in text and "</think>" not in text)
        if progress is not None:
            progress.update(1)
    figures = _figures(counts)
    for kind, spent in tokens.items():
        figures[f"{kind}_think_tokens"] = (sum(spent) / len(spent), len(spent))
    return figures


def load_phrasings(path=None):
    """The held-out phrasings (training/phrasings_held_out.json): questions written apart from the corpus."""
    path = path or Path(__file__).parent / "phrasings_held_out.json"
    return json.loads(Path(path).read_text(encoding="utf-8"))["items"]


# The word that shows a city's other sight (corpus.CITIES holds the first one's).
SECOND_SIGHT = {
    "Paris": "Louvre",
    "Rome": "Trevi",
    "Tokyo": "Senso-ji",
    "London": "British Museum",
    "New York": "Broadway",
    "Berlin": "East Side Gallery",
    "Barcelona": "Rambla",
    "Cairo": "Nile",
}


def _phrasing_right(item, reply):
    """Does `reply` answer a plain held-out phrasing? Sums by their final number, cities by either sight."""
    kind, answer = item["type"], str(item["answer"])
    if kind in ("sum", "difference"):
        return answer_is_correct(answer, "arithmetic", reply)
    if kind == "city_fun":
        city = next(c for c in corpus.CITIES if c.lower() in item["question"].lower())
        return any(k.lower() in reply.lower() for k in (corpus.CITIES[city][3], SECOND_SIGHT[city]))
    return answer_is_correct(answer, "fact", reply)


def _same_call(call, expected):
    """The call names the expected tool with the expected arguments (either order for add and multiply)."""
    if call["name"] != expected["name"]:
        return False
    got, want = call.get("arguments") or {}, expected["arguments"]
    if expected["name"] in ("add", "multiply"):
        return sorted(map(str, got.values())) == sorted(map(str, want.values())) and set(got) == set(want)
    return got == want


def evaluate_phrasings(model, tokenizer, items, max_new_tokens=96, progress=None):
    """Figures on the held-out phrasings, as (fraction, questions): `plain` (no tools in the prompt: the
    reply has the answer), `tool_call` (the four tools listed: exactly the expected call, or none where
    none answers) and each `type` of both."""
    counts, add = _tally()
    model.eval()
    tools = list(corpus.TOOLS.values())
    for item in items:
        chat = [{"role": "user", "content": item["question"]}]
        if item["kind"] == "plain":
            reply, _ = generate_reply(model, tokenizer, render_chat(chat) + "<|im_start|>assistant\n", max_new_tokens)
            ok = _phrasing_right(item, reply)
        else:
            prompt = tokenizer.apply_chat_template(chat, tools=tools, tokenize=False, add_generation_prompt=True)
            text, _ = generate_reply(model, tokenizer, prompt, max_new_tokens)
            calls = parse_reply(tokenizer, text, prefix=prompt).get("tool_calls") or []
            expected = item["call"]
            ok = not calls if expected is None else len(calls) == 1 and _same_call(calls[0]["function"], expected)
        add(item["kind"] if item["kind"] == "plain" else "tool_call", ok)
        add(f"{item['kind']}:{item['type']}", ok)
        if progress is not None:
            progress.update(1)
    return _figures(counts)


def format_figures(figures):
    names = ["correct", "fact", "city", "arithmetic", "explain", "followup", "persona_style", "default_style", "stops"]
    return "  ".join(f"{n}={figures[n][0]:.1%}" for n in names if n in figures)


def main(argv=None):
    from tqdm.auto import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import chatkit

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model folder (default: chatkit's embedded model)")
    parser.add_argument("--n", type=int, default=400, help="number of held-out conversations")
    parser.add_argument("--seed", type=int, default=EVAL_SEED)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    path = args.model or chatkit.embedded_model_path()
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(path)
    convs = corpus.conversations(args.n, seed=args.seed)
    n_turns = sum(len(c.turns) for c in convs)
    print(
        f"{args.n} held-out conversations (seed {args.seed}), {n_turns} assistant turns, greedy, "
        f"max_new_tokens={args.max_new_tokens}"
    )
    results = {}
    for template in (True, False):
        start = time.perf_counter()
        with tqdm(total=len(convs), desc="chat template" if template else "plain text") as bar:
            results[template] = evaluate(model, tokenizer, convs, template, args.max_new_tokens, bar)
        print(
            f"{'with chat template' if template else 'plain text (no template)'} ({time.perf_counter() - start:.0f} s)"
        )
    print(f"{'figure':<16}{'turns':>7}{'template':>10}{'plain':>8}{'drop':>8}")
    for name in [
        "correct",
        "fact",
        "city",
        "arithmetic",
        "explain",
        "followup",
        "persona_style",
        "default_style",
        "stops",
    ]:
        with_t, n = results[True].get(name, (float("nan"), 0))
        plain = results[False].get(name, (float("nan"), 0))[0]
        print(f"{name:<16}{n:>7}{with_t:>10.1%}{plain:>8.1%}{(with_t - plain) * 100:>7.1f}p")
    return results


if __name__ == "__main__":
    main()
