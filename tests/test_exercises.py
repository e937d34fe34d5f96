"""chatkit.exercises: every check takes several right answers and refuses several wrong ones, with a hint;
an exercise left open says "Not answered yet", in the tests and in the committed notebooks."""

import json
import re
import threading
from pathlib import Path

import pytest
import torch

import chatkit
from chatkit import checking, counting, exercises, memory, sizing
from chatkit.catalog import CATALOG


def right(verdict):
    assert verdict, verdict
    assert repr(verdict).startswith("Right: ")


def wrong(verdict, hint=""):
    assert not verdict, verdict
    assert repr(verdict).startswith("Not yet: ") and hint in verdict.message, verdict


def test_an_unanswered_exercise_says_so_and_raises_nothing():
    for check, args in [
        (exercises.persona, (...,)),
        (exercises.greedy_reply, (..., None, None, None)),
        (exercises.meta_footprint, (..., True)),
        (exercises.kv_cache_by_hand, (..., ..., None)),
        (exercises.stop_when_set, (StopWhenSetPlaceholder,)),
    ]:
        verdict = check(*args)
        assert not verdict and repr(verdict) == f"Not answered yet: {checking.NOT_ANSWERED}"


def reply_text_placeholder(response):
    """The text of the last reply in what `pipe(chat)` returned."""
    ...


def parse_json_placeholder(text): ...


def tokens_per_second_placeholder(completion, seconds):
    """The reply's tokens per second."""

    ...


class StopWhenSetPlaceholder:  # notebook 06's exercise 6.3 as the learner finds it
    def __init__(self, event):
        self.event = event

    def __call__(self, input_ids, scores, **kwargs): ...  # True once self.event is set


@pytest.mark.parametrize(
    "check, placeholder",
    [
        (exercises.reply_text, reply_text_placeholder),
        (exercises.parse_json, parse_json_placeholder),
        (exercises.tokens_per_second, tokens_per_second_placeholder),
        (exercises.stop_when_set, StopWhenSetPlaceholder),
    ],
)
def test_a_function_left_as_its_placeholder_is_not_answered_yet(check, placeholder):
    assert repr(check(placeholder)) == f"Not answered yet: {checking.NOT_ANSWERED}"


def returns_none(text):
    """Starts like the placeholder, but the learner wrote a body."""
    return None


def test_a_function_with_a_body_of_its_own_is_checked():
    wrong(exercises.parse_json(returns_none), "your function returned None")
    wrong(exercises.tokens_per_second(lambda completion, seconds: ...), "usage says")  # a value, not a body


# ------------------------------------------------------------------ the committed notebooks' exercises
NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def _exercise_cells(notebook):
    """(index, source, output text) of each code cell that calls a check of chatkit.exercises."""
    for index, cell in enumerate(notebook["cells"]):
        source = "".join(cell["source"])
        if cell["cell_type"] == "code" and re.search(r"^exercises\.\w+\(", source, re.MULTILINE):
            text = "".join(
                "".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                for o in cell.get("outputs", [])
            )
            yield index, source, text


def open_exercises_showing_more(notebook):
    """Exercise cells whose verdict (the output's last line) is not "Not answered yet: ...", or that show
    another verdict too, as "cell N: <output>". What else the cell prints (a config to read) may stay."""
    shown = []
    for index, _, text in _exercise_cells(notebook):
        lines = text.strip().splitlines()
        if (
            not lines
            or lines[-1] != f"Not answered yet: {checking.NOT_ANSWERED}"
            or any(line.startswith(("Right: ", "Not yet: ")) for line in lines)
        ):
            shown.append(f"cell {index}: {text.strip()[-100:]!r}")
    return shown


def _cell(source, *outputs):
    return {
        "cell_type": "code",
        "source": source.splitlines(keepends=True),
        "outputs": [{"output_type": "execute_result", "data": {"text/plain": text}} for text in outputs],
    }


def test_the_guard_on_committed_exercises_tells_an_open_exercise_from_a_verdict():
    open_text = f"Not answered yet: {checking.NOT_ANSWERED}"
    notebook = {
        "cells": [
            {"cell_type": "markdown", "source": ["exercises.persona(my_chat) in prose is no exercise cell"]},
            _cell("my_chat = ...\nexercises.persona(my_chat)", open_text),
            _cell(
                "print(smollm2)\ntotal = ...\nexercises.count_smollm2(total)", "{'model_type': 'llama'}\n", open_text
            ),
            _cell("def f(response):\n    ...\n\n\nexercises.reply_text(f)", "Not yet: your function returned None"),
            _cell("exercises.two_turns(chat)", "Right: 2 replies, the turns alternate"),
            _cell("exercises.two_turns(chat)\nexercises.persona(...)", "Not yet: a reply is empty\n", open_text),
            _cell("exercises.persona(chat)"),  # never run
        ]
    }
    assert [line.split(":")[0] for line in open_exercises_showing_more(notebook)] == [f"cell {i}" for i in (3, 4, 5, 6)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_committed_exercises_show_only_not_answered_yet(path):
    """A committed notebook shows its exercises open: no hint before the learner has done anything. (Fails
    until the notebook is executed again after a check or a placeholder changed.)"""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    assert list(_exercise_cells(notebook)), "no exercise cell found"
    assert open_exercises_showing_more(notebook) == []


def _function_cells(folder, checks=None):
    """(notebook, cell index, source, check) of each exercise cell that passes its check a function (or a
    class) the cell defines; or, given `checks`, of each exercise cell that calls one of them."""
    for path in sorted((Path(__file__).parent.parent / folder).glob("*.ipynb")):
        for index, source, _ in _exercise_cells(json.loads(path.read_text(encoding="utf-8"))):
            called = re.search(r"^exercises\.(\w+)\((\w+)\)", source, re.MULTILINE)
            if called is None:
                continue
            check, argument = called.groups()
            defined = re.findall(r"^(?:def|class) (\w+)\b", source, re.MULTILINE)
            if (check in checks) if checks is not None else (argument in defined):
                yield path.name, index, source, check


def test_function_exercises_run_as_jupyter_runs_them_say_not_answered_yet_or_right():
    """Each notebook's exercise cell that defines its placeholder function (or class) says "Not answered yet"
    (what its committed output will show once executed again); each solution's says "Right"."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    verdicts = {}
    function_checks = {check for *_, check in _function_cells("notebooks")}
    for folder, checks in (("notebooks", None), ("solutions", function_checks)):
        for name, index, source, _ in _function_cells(folder, checks):
            shell.user_ns["exercises"] = exercises
            result = shell.run_cell(source, store_history=False)
            assert result.success, (folder, name, index, result.error_in_exec)
            verdicts[folder, name, index] = repr(result.result)
    opened = [v for (folder, *_), v in verdicts.items() if folder == "notebooks"]
    solved = [v for (folder, *_), v in verdicts.items() if folder == "solutions"]
    assert len(opened) >= 4 and set(opened) == {f"Not answered yet: {checking.NOT_ANSWERED}"}, verdicts  # 1.3, 6.3, ...
    assert len(solved) >= 4 and all(v.startswith("Right: ") for v in solved), verdicts


SYSTEM = {"role": "system", "content": "You are a pirate."}
USER = {"role": "user", "content": "Where is the treasure?"}


def test_persona():
    right(exercises.persona([SYSTEM, USER]))
    right(exercises.persona([{"role": "system", "content": "You answer like a 1920s radio host."}, USER]))
    wrong(exercises.persona([USER]), "system")
    wrong(exercises.persona([{"role": "system", "content": exercises.SASSY_ROBOT}, USER]), "of your own")
    wrong(exercises.persona([SYSTEM, USER, {"role": "assistant", "content": "Arr"}]), "end with")
    wrong(exercises.persona([SYSTEM, {"role": "robot", "content": "beep"}]), "not a valid chat")


def _turns(n):
    chat = [SYSTEM]
    for i in range(n):
        chat += [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": f"answer {i}"}]
    return chat


def test_two_turns():
    right(exercises.two_turns(_turns(2)))
    right(exercises.two_turns(_turns(3)))
    wrong(exercises.two_turns(_turns(1)), "two replies")
    wrong(exercises.two_turns(_turns(2)[1:]), "system message first")
    wrong(exercises.two_turns(_turns(2) + [{"role": "user", "content": "and?"}]), "take turns")
    doubled = _turns(2)
    doubled.insert(2, {"role": "user", "content": "again"})
    wrong(exercises.two_turns(doubled), "take turns")


def test_reply_text():
    right(exercises.reply_text(lambda response: response[0]["generated_text"][-1]["content"]))
    right(
        exercises.reply_text(lambda r: [m for m in r[0]["generated_text"] if m["role"] == "assistant"][-1]["content"])
    )
    wrong(exercises.reply_text(lambda response: response[0]["generated_text"][-1]), "not the whole message")
    wrong(exercises.reply_text(lambda response: response[0]["generated_text"][2]["content"]), "raised IndexError")
    wrong(exercises.reply_text(lambda response: response[0]["generated_text"][1]["content"]), "your function returned")
    wrong(exercises.reply_text("response[0]"), "pass the function itself")


def _smollm2_by_hand():
    c = CATALOG[exercises.SMOLLM2].config
    h, layers, kv = (
        c["hidden_size"],
        c["num_hidden_layers"],
        c["num_key_value_heads"] * c["hidden_size"] // c["num_attention_heads"],
    )
    per_layer = 2 * h * h + 2 * h * kv + 3 * h * c["intermediate_size"] + 2 * h
    return layers * per_layer + h + c["vocab_size"] * h


def test_count_smollm2():
    exact = counting.count_parameters(CATALOG[exercises.SMOLLM2]).total
    right(exercises.count_smollm2(_smollm2_by_hand()))
    right(exercises.count_smollm2(_smollm2_by_hand() - 2 * 960 * 32 - 960))  # the norms forgotten: tiny
    assert _smollm2_by_hand() == exact
    wrong(exercises.count_smollm2(exact + 49152 * 960), "ties its embeddings")
    wrong(exercises.count_smollm2(360_000_000 // 2), "not within 0.5%")
    wrong(exercises.count_smollm2(float(exact)), "whole number")


def test_bf16_gigabytes():
    params = counting.count_parameters("mistralai/Mistral-7B-Instruct-v0.3").total
    right(exercises.bf16_gigabytes(2 * params / 1e9))
    right(exercises.bf16_gigabytes(round(2 * params / 2**30, 1)))
    right(exercises.bf16_gigabytes(14.5))
    wrong(exercises.bf16_gigabytes(params / 1e9), "parameter count")
    wrong(exercises.bf16_gigabytes(4 * params / 1e9), "fp32")
    wrong(exercises.bf16_gigabytes(10.0), "not within 2%")
    wrong(exercises.bf16_gigabytes("14.5 GB"), "a number")


def _mistral_on_meta(**kwargs):
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model(**CATALOG[exercises.MISTRAL_7B].config)
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config, **kwargs)


def test_meta_footprint():
    bf16 = _mistral_on_meta(dtype=torch.bfloat16)
    footprint = bf16.get_memory_footprint()
    params = counting.count_parameters(exercises.MISTRAL_7B).total
    assert footprint - 2 * params < 10_000  # the weights, and the rotary embedding's small buffers
    right(exercises.meta_footprint(footprint, footprint <= 16 * 2**30))
    right(exercises.meta_footprint(footprint, footprint < 16e9))  # 10^9 or 2^30: the same answer here
    right(exercises.meta_footprint(bf16.get_memory_footprint(return_buffers=False), True))
    wrong(exercises.meta_footprint(footprint, False), "16 GiB")
    wrong(exercises.meta_footprint(footprint, "yes"), "True or False")
    fp32 = _mistral_on_meta().get_memory_footprint()  # no dtype: float32
    wrong(exercises.meta_footprint(fp32, fp32 <= 16 * 2**30), "dtype")
    wrong(exercises.meta_footprint(params, True), "get_memory_footprint")
    llama = 2 * counting.count_parameters("meta-llama/Meta-Llama-3-8B-Instruct").total  # §2.2's model, in bf16
    wrong(exercises.meta_footprint(llama, llama <= 16 * 2**30), "not Mistral-7B's footprint")
    wrong(exercises.meta_footprint(f"{footprint / 2**30:.1f} GiB", True), "in bytes")


@pytest.fixture(scope="module")
def rendered(chat_model):
    _, tokenizer = chat_model
    chat = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    return chat, tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)


def test_single_bos(chat_model, rendered):
    from transformers import AutoTokenizer

    _, tokenizer = chat_model
    chat, text = rendered
    llama_style = AutoTokenizer.from_pretrained(chatkit.embedded_model_path(), add_bos_token=True)
    right(exercises.single_bos(llama_style(text, add_special_tokens=False)["input_ids"], llama_style, text))
    right(exercises.single_bos(llama_style(text, add_special_tokens=False, return_tensors="pt"), llama_style, text))
    right(
        exercises.single_bos(
            tokenizer.apply_chat_template(chat, add_generation_prompt=True, return_dict=False), llama_style, text
        )
    )
    wrong(exercises.single_bos(llama_style(text)["input_ids"], llama_style, text), "§3.3")
    wrong(
        exercises.single_bos(llama_style(text, add_special_tokens=False)["input_ids"][:-1], llama_style, text),
        "not the ids",
    )
    batch = llama_style([text, text], add_special_tokens=False)["input_ids"]
    wrong(exercises.single_bos(batch, llama_style, text), "not a batch")
    no_bos = llama_style(text, add_special_tokens=False)["input_ids"][1:]
    wrong(exercises.single_bos(no_bos, llama_style, text[len(llama_style.bos_token) :]), "do not start with the BOS")


RECIPE = ("add_special_tokens", "tokenize=True", "add_generation_prompt", "do_sample", "max_new_tokens=32")


def nudges(verdict):
    """A hint that points at a step or an idea, and recites none of the arguments that make the answer."""
    assert not verdict and not [word for word in RECIPE if word in verdict.message], verdict


def test_the_bos_hints_nudge_without_the_recipe(chat_model, rendered):
    from transformers import AutoTokenizer

    chat, text = rendered
    llama_style = AutoTokenizer.from_pretrained(chatkit.embedded_model_path(), add_bos_token=True)
    doubled = exercises.single_bos(llama_style(text)["input_ids"], llama_style, text)
    nudges(doubled)
    assert "2 BOS tokens" in doubled.message and "which step" in doubled.message


def test_fold_system(rendered):
    chat, _ = rendered
    question = chat[1]["content"]
    right(exercises.fold_system(chatkit.fold_system_message(chat), chat))
    right(exercises.fold_system([{"role": "user", "content": f"{question}\n\n({chat[0]['content']})"}], chat))
    longer = chat + [{"role": "assistant", "content": "Paris."}, {"role": "user", "content": "And Italy?"}]
    right(
        exercises.fold_system([{"role": "user", "content": chat[0]["content"] + " " + question}, *longer[2:]], longer)
    )
    wrong(exercises.fold_system(chat[1:], chat), "instruction is lost")
    wrong(exercises.fold_system(chat, chat), "system message is still there")
    wrong(exercises.fold_system([{"role": "user", "content": chat[0]["content"]}], chat), "first question is lost")
    wrong(
        exercises.fold_system([{"role": "user", "content": chat[0]["content"] + question}, *longer[2:3]], longer),
        "keep the rest",
    )


def test_greedy_reply(chat_model, rendered):
    model, tokenizer = chat_model
    chat, text = rendered
    inputs = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    out = model.generate(**inputs, max_new_tokens=32, do_sample=False)
    by_hand = tokenizer.decode(out[0][inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    right(exercises.greedy_reply(by_hand, model, tokenizer, chat))
    right(exercises.greedy_reply(by_hand + "\n", model, tokenizer, chat))
    with_prompt = tokenizer.decode(out[0], skip_special_tokens=True)
    wrong(exercises.greedy_reply(with_prompt, model, tokenizer, chat), "holds the prompt")
    wrong(exercises.greedy_reply(by_hand[: len(by_hand) // 2], model, tokenizer, chat), "not the greedy reply")
    wrong(exercises.greedy_reply(out, model, tokenizer, chat), "decoded text")


def test_the_greedy_reply_hints_nudge_toward_the_step_without_the_recipe(chat_model, rendered):
    model, tokenizer = chat_model
    chat, text = rendered
    inputs = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    out = model.generate(**inputs, max_new_tokens=32, do_sample=False)
    new_tokens = out[0][inputs["input_ids"].shape[1] :]
    by_hand = tokenizer.decode(new_tokens, skip_special_tokens=True)
    early = exercises.greedy_reply(by_hand[: len(by_hand) // 2], model, tokenizer, chat)
    nudges(early)
    assert "new tokens" in early.message
    with_end_token = tokenizer.decode(new_tokens, skip_special_tokens=False)
    if with_end_token.strip() != by_hand.strip():  # the reply ended with the end-of-turn token
        runs_on = exercises.greedy_reply(with_end_token, model, tokenizer, chat)
        nudges(runs_on)
        assert "steps 4 and 5" in runs_on.message
    other = exercises.greedy_reply("Arr, Paris it be, matey.", model, tokenizer, chat)
    nudges(other)
    assert "step 2" in other.message and "§3.2" in other.message


def test_kv_cache_per_token():
    per_token = 2 * 32 * 8 * 128 * 2  # Mistral-7B: 32 layers, 8 KV heads of 128, bf16
    right(exercises.kv_cache_per_token(per_token))
    right(exercises.kv_cache_per_token(per_token / 1.0))
    wrong(exercises.kv_cache_per_token(per_token // 2), "two tensors")
    wrong(exercises.kv_cache_per_token(per_token * 4), "key/value heads")
    wrong(exercises.kv_cache_per_token(per_token * 2), "head_dim")
    wrong(exercises.kv_cache_per_token("128 KiB"), "a number")


@pytest.fixture(scope="module")
def four_bit():
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    config = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16)
    return AutoModelForCausalLM.from_pretrained(
        chatkit.embedded_model_path(), quantization_config=config, dtype=torch.bfloat16
    )


def test_four_bit_ratio(four_bit, chat_model):
    from transformers import AutoModelForCausalLM

    from chatkit import memory

    bf16 = AutoModelForCausalLM.from_pretrained(chatkit.embedded_model_path(), dtype=torch.bfloat16)
    right(exercises.four_bit_ratio(four_bit, bf16.get_memory_footprint() / four_bit.get_memory_footprint()))
    right(exercises.four_bit_ratio(four_bit, memory.model_footprint(bf16) / memory.model_footprint(four_bit)))
    ratio = bf16.get_memory_footprint() / four_bit.get_memory_footprint()
    assert 1.2 < ratio < 4
    wrong(exercises.four_bit_ratio(four_bit, 1 / ratio), "upside down")
    wrong(exercises.four_bit_ratio(four_bit, 4.0), "not what this model measures")
    wrong(exercises.four_bit_ratio(chat_model[0], ratio), "load_in_4bit")
    wrong(exercises.four_bit_ratio(four_bit, 0), "positive number")


def test_the_four_bit_check_leaves_the_why_to_the_quiz(four_bit):
    """Exercise 4.2 asks why 4-bit saves less than 4×; quiz 4 asks it too, so the check must not say."""
    from chatkit import memory, quiz

    bf16_bytes = 2 * counting.count_parameters(four_bit.config).total
    verdict = exercises.four_bit_ratio(four_bit, bf16_bytes / memory.model_footprint(four_bit))
    right(verdict)
    assert not [word for word in ("embedding", "norm", "scale", "16-bit", "lm_head") if word in verdict.message]
    assert "quiz" in verdict.message
    asked = [q for q in quiz.QUIZZES[4] if "4-bit" in q.text and "bytes per parameter" in q.text]
    assert asked and all(word in asked[0].reason for word in ("embeddings", "norms", "scales"))


def _cache_of_100(model, tokens=100):
    ids = torch.randint(0, model.config.vocab_size, (1, tokens), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return model(ids, use_cache=True).past_key_values


def _bytes(tensors):
    return sum(t.nelement() * t.element_size() for t in tensors)


def test_kv_cache_by_hand(chat_model, small_llama):
    model, _ = chat_model
    cache = _cache_of_100(model)
    nbytes = _bytes(t for layer in cache.layers for t in (layer.keys, layer.values))
    assert nbytes == memory.cache_bytes(cache) == sizing.kv_cache_bytes(model.config, 100, dtype="fp32")
    right(exercises.kv_cache_by_hand(cache, nbytes, model))
    right(exercises.kv_cache_by_hand(cache, sizing.kv_cache_bytes(model.config, 100, dtype="fp32"), model))
    wrong(exercises.kv_cache_by_hand(cache, _bytes(layer.keys for layer in cache.layers), model), "values")
    layer = cache.layers[0]
    wrong(exercises.kv_cache_by_hand(cache, _bytes([layer.keys, layer.values]), model), "one layer")
    wrong(exercises.kv_cache_by_hand(cache, nbytes + 1, model), "nelement() * element_size()")
    wrong(exercises.kv_cache_by_hand(_cache_of_100(model, 64), nbytes, model), "holds 64 tokens")
    wrong(exercises.kv_cache_by_hand(cache.layers, nbytes, model), "past_key_values")
    wrong(exercises.kv_cache_by_hand(cache, nbytes, small_llama), "the model you passed")
    wrong(exercises.kv_cache_by_hand(cache, _bytes([layer.keys]), model), "one layer")  # its keys only
    wrong(exercises.kv_cache_by_hand(cache, "614 KB", model), "nelement() * element_size()")


def test_kv_cache_by_hand_in_bf16_and_in_a_one_layer_model():
    from chatkit import toy_models

    for model in (toy_models.random_llama(64, 3, dtype="bfloat16", vocab_size=256), toy_models.random_llama(64, 1)):
        cache = _cache_of_100(model)
        right(exercises.kv_cache_by_hand(cache, sizing.kv_cache_bytes(model.config, 100, dtype=model.dtype), model))
        keys = _bytes(layer.keys for layer in cache.layers)
        wrong(exercises.kv_cache_by_hand(cache, keys, model), "values")
        first = _bytes([cache.layers[0].keys, cache.layers[0].values])
        if len(cache.layers) > 1:
            wrong(exercises.kv_cache_by_hand(cache, first, model), "one layer")


def test_predicted_rate(chat_model):
    from chatkit import speed

    model, _ = chat_model
    expected = 20.0 * 1e9 / speed.weight_bytes_per_token(model)
    right(exercises.predicted_rate(expected, 20.0, model))
    right(exercises.predicted_rate(expected * 1.05, 20.0, model))
    wrong(exercises.predicted_rate(expected / 1e9, 20.0, model), "GB/s")
    wrong(exercises.predicted_rate(expected * 2, 20.0, model), "bytes per second")


def test_measured_rate(chat_model):
    import time

    model, tokenizer = chat_model
    inputs = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hi!"}], add_generation_prompt=True, return_dict=True, return_tensors="pt"
    )
    start = time.perf_counter()
    out = model.generate(**inputs, max_new_tokens=32, min_new_tokens=32, do_sample=False)
    rate = (out.shape[1] - inputs["input_ids"].shape[1]) / (time.perf_counter() - start)
    right(exercises.measured_rate(rate, model, tokenizer))
    wrong(exercises.measured_rate(rate * 100, model, tokenizer), "far from")
    wrong(exercises.measured_rate(rate / 100, model, tokenizer), "far from")
    wrong(exercises.measured_rate(-1, model, tokenizer), "a number")


def test_assisted_kwargs(chat_model):
    model, tokenizer = chat_model
    right(exercises.assisted_kwargs({"prompt_lookup_num_tokens": 3}, model, tokenizer))
    right(exercises.assisted_kwargs({"prompt_lookup_num_tokens": 10, "max_matching_ngram_size": 2}, model, tokenizer))
    right(exercises.assisted_kwargs({"assistant_model": model}, model, tokenizer))
    wrong(exercises.assisted_kwargs({}, model, tokenizer), "prompt_lookup_num_tokens")
    wrong(
        exercises.assisted_kwargs(
            {"prompt_lookup_num_tokens": 3, "do_sample": True, "temperature": 2.0}, model, tokenizer
        ),
        "do_sample=False",
    )
    wrong(exercises.assisted_kwargs("prompt_lookup_num_tokens=3", model, tokenizer), "a dict")


def _stream(model, tokenizer, question, skip_prompt=True, skip_special_tokens=True, **settings):
    """The chunks of §6.4's loop: a TextIteratorStreamer fed by generate in a thread."""
    from transformers import TextIteratorStreamer

    inputs = tokenizer.apply_chat_template(
        [{"role": "user", "content": question}], add_generation_prompt=True, return_dict=True, return_tensors="pt"
    )
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=skip_prompt, skip_special_tokens=skip_special_tokens)
    settings = {"max_new_tokens": 64, "do_sample": False, **settings}
    thread = threading.Thread(target=model.generate, kwargs=dict(**inputs, streamer=streamer, **settings))
    thread.start()
    chunks = list(streamer)
    thread.join()
    return chunks


QUESTION = "What is the capital of France?"


def test_streamed_chunks(chat_model):
    model, tokenizer = chat_model
    chunks = _stream(model, tokenizer, QUESTION)
    assert len(chunks) > 1
    right(exercises.streamed_chunks(chunks, QUESTION, model, tokenizer))
    wrong(exercises.streamed_chunks("".join(chunks), QUESTION, model, tokenizer), "list")
    wrong(exercises.streamed_chunks([1, 2], QUESTION, model, tokenizer), "text chunks")
    with_prompt = _stream(model, tokenizer, QUESTION, skip_prompt=False)
    wrong(exercises.streamed_chunks(with_prompt, QUESTION, model, tokenizer), "more than the reply")
    with_special = _stream(model, tokenizer, QUESTION, skip_special_tokens=False)
    wrong(exercises.streamed_chunks(with_special, QUESTION, model, tokenizer), "more than the reply")
    short = _stream(model, tokenizer, QUESTION, max_new_tokens=3)
    wrong(exercises.streamed_chunks(short, QUESTION, model, tokenizer), "they stop early")
    wrong(exercises.streamed_chunks(_stream(model, tokenizer, "Hi!"), QUESTION, model, tokenizer), "not the reply")
    wrong(exercises.streamed_chunks(["".join(chunks)], QUESTION, model, tokenizer), "one chunk")


@pytest.fixture()
def chatbox(chat_model):
    model, tokenizer = chat_model
    window = chatkit.ChatWidget(model, tokenizer, max_new_tokens=64)
    window.history = [SYSTEM, {"role": "user", "content": "Hello!"}, {"role": "assistant", "content": "Arr!"}]
    return window


def test_pipeline_continues(chat_model, chatbox):
    from transformers import pipeline

    model, tokenizer = chat_model
    pipe = pipeline("text-generation", model=model, tokenizer=tokenizer)
    chat = chatbox.history + [{"role": "user", "content": QUESTION}]
    response = pipe(chat, max_new_tokens=64, do_sample=False)
    continued = response[0]["generated_text"]
    right(exercises.pipeline_continues(continued, chatbox, model, tokenizer))
    wrong(exercises.pipeline_continues(response, chatbox, model, tokenizer), "generated_text")
    wrong(exercises.pipeline_continues("Arr!", chatbox, model, tokenizer), "list of messages")
    short = pipe(chat, max_new_tokens=2, do_sample=False)[0]["generated_text"]
    wrong(exercises.pipeline_continues(short, chatbox, model, tokenizer), "max_new_tokens=64")
    edited = continued[:-1] + [{"role": "assistant", "content": "Rome, of course."}]
    wrong(exercises.pipeline_continues(edited, chatbox, model, tokenizer), "greedy reply")
    alone = pipe(chat[-1:], max_new_tokens=64, do_sample=False)[0]["generated_text"]
    wrong(exercises.pipeline_continues(alone, chatbox, model, tokenizer), "the window's chat")
    wrong(exercises.pipeline_continues(chatbox.history, chatbox, model, tokenizer), "then a question")
    wrong(exercises.pipeline_continues([{"role": "bot", "content": "Hi"}], chatbox, model, tokenizer), "valid chat")
    chatbox.send("And what about Rome?")  # the window goes on: the check reads its history now
    chatbox.wait(timeout=60)
    wrong(exercises.pipeline_continues(continued, chatbox, model, tokenizer), "the window's chat")


def _criterion(answer):
    """A StoppingCriteria subclass whose __call__ returns answer(event, input_ids)."""
    from transformers import StoppingCriteria

    class Criterion(StoppingCriteria):
        def __init__(self, event):
            self.event = event

        def __call__(self, input_ids, scores, **kwargs):
            return answer(self.event, input_ids)

    return Criterion


STOPS = _criterion(lambda event, ids: event.is_set())


def test_stop_when_set(chat_model):
    from transformers import StoppingCriteria

    model, tokenizer = chat_model
    right(exercises.stop_when_set(STOPS))  # on chatkit's embedded model
    right(exercises.stop_when_set(STOPS, model, tokenizer))
    as_tensor = _criterion(lambda event, ids: torch.full((ids.shape[0],), event.is_set(), dtype=torch.bool))
    right(exercises.stop_when_set(as_tensor, model, tokenizer))

    class AskedOnce(StoppingCriteria):  # reads the event when made, never again
        def __init__(self, event):
            self.stop = event.is_set()

        def __call__(self, input_ids, scores, **kwargs):
            return self.stop

    wrong(exercises.stop_when_set(AskedOnce, model, tokenizer), "each time `__call__` runs")
    wrong(exercises.stop_when_set(_criterion(lambda event, ids: True if event.is_set() else None)), "returned None")
    wrong(exercises.stop_when_set(_criterion(lambda event, ids: event.is_set)), "returned <bound method")
    wrong(exercises.stop_when_set(_criterion(lambda event, ids: not event.is_set())), "never set, generate stopped")

    class AlsoStopsByItself(StoppingCriteria):  # stops once the event is set, but also after 5 calls anyway
        def __init__(self, event):
            self.event, self.calls = event, 0

        def __call__(self, input_ids, scores, **kwargs):
            self.calls += 1
            return self.event.is_set() or self.calls >= 5

    wrong(exercises.stop_when_set(AlsoStopsByItself, model, tokenizer), "stopped early")
    wrong(exercises.stop_when_set(_criterion(lambda event, ids: False)), "with the event set, generate wrote on")
    wrong(exercises.stop_when_set(_criterion(lambda event, ids: event.missing())), "raised AttributeError")
    wrong(exercises.stop_when_set(STOPS(threading.Event())), "the class itself")
    wrong(exercises.stop_when_set(lambda input_ids, scores: True), "the class itself")


def weather(city: str, unit: str = "celsius") -> str:
    """The weather in a city.

    Args:
        city: The city's name.
        unit: "celsius" or "fahrenheit".
    """
    return f"sunny in {city}"


def celsius(fahrenheit: float) -> float:
    """Degrees Fahrenheit in Celsius.

    Args:
        fahrenheit: The temperature in degrees Fahrenheit.
    """
    return (fahrenheit - 32) * 5 / 9


def undocumented(city: str) -> str:
    """The weather."""
    return city


def untyped(city):
    """The weather.

    Args:
        city: The city.
    """
    return city


def no_arguments() -> str:
    """Today's date."""
    return "2026-01-01"


def test_tool_schema():
    right(exercises.tool_schema(weather))
    right(exercises.tool_schema(celsius))
    wrong(exercises.tool_schema(undocumented), "get_json_schema refused")
    wrong(exercises.tool_schema(untyped), "get_json_schema refused")
    wrong(exercises.tool_schema(no_arguments), "at least one argument")
    wrong(exercises.tool_schema(chatkit.tools.multiply), "of your own")
    wrong(exercises.tool_schema("weather"), "the function itself")


CALL = {
    "role": "assistant",
    "tool_calls": [{"type": "function", "function": {"name": "multiply", "arguments": {"a": 15, "b": 4}}}],
}
RESULT = {"role": "tool", "name": "multiply", "content": "60"}
ANSWER = {"role": "assistant", "content": "15 times 4 is 60."}


def test_tool_conversation(chat_model):
    model, tokenizer = chat_model
    right(exercises.tool_conversation([CALL, RESULT, ANSWER]))
    question = [{"role": "user", "content": "What is 15 times 4?"}]
    right(exercises.tool_conversation(question + [CALL, RESULT, ANSWER]))  # the whole chat is fine too
    tools = [chatkit.tools.add, chatkit.tools.subtract, chatkit.tools.multiply, chatkit.tools.city_facts]
    right(exercises.tool_conversation(chatkit.run_tools(model, tokenizer, question, tools, max_new_tokens=64)))
    wrong(exercises.tool_conversation([ANSWER]), "no tool call")
    wrong(exercises.tool_conversation([CALL, ANSWER]), "result is missing")
    wrong(exercises.tool_conversation([CALL, RESULT]), "end with the model's answer")
    wrong(exercises.tool_conversation({"messages": []}), "list of messages")


def parse_with_regex(text):
    match = re.search(r"\{.*\}", text, re.DOTALL)
    if match is None:
        return None
    try:
        return json.loads(match.group())
    except json.JSONDecodeError:
        return None


def parse_with_raw_decode(text):
    decoder = json.JSONDecoder()
    for start in (i for i, ch in enumerate(text) if ch == "{"):
        try:
            return decoder.raw_decode(text, start)[0]
        except json.JSONDecodeError:
            continue
    return None


def test_parse_json():
    right(exercises.parse_json(parse_with_regex))
    right(exercises.parse_json(parse_with_raw_decode))
    wrong(exercises.parse_json(json.loads), "raised JSONDecodeError")
    wrong(exercises.parse_json(lambda text: parse_with_regex(text) or {}), "expected null")
    wrong(
        exercises.parse_json(lambda text: json.loads(text) if text.startswith("{") and text.endswith("}") else None),
        "your function returned None",
    )


def test_server_checks_compare_with_the_servers_greedy_reply(monkeypatch):
    replies = {"What is 2 + 2?": "4.", "Hi!": "Hello!", "Hi!|Hello!|And you?": "I am fine."}
    monkeypatch.setattr(
        exercises, "_server_reply", lambda url, model_id, messages: replies["|".join(m["content"] for m in messages)]
    )
    right(exercises.streamed_reply("4.", "What is 2 + 2?", "http://127.0.0.1:1", "m"))
    wrong(exercises.streamed_reply("4", "What is 2 + 2?", "http://127.0.0.1:1", "m"), "delta.content")
    wrong(exercises.streamed_reply(["4."], "What is 2 + 2?", "http://127.0.0.1:1", "m"), "one string")
    chat = [
        {"role": "user", "content": "Hi!"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "And you?"},
        {"role": "assistant", "content": "I am fine."},
    ]
    right(exercises.follow_up(chat, "http://127.0.0.1:1", "m"))
    wrong(exercises.follow_up(chat[:2], "http://127.0.0.1:1", "m"), "four messages")
    wrong(exercises.follow_up(chat[:3] + [{"role": "assistant", "content": "Hello!"}], "u", "m"), "whole chat")
    wrong(exercises.follow_up([chat[0], {"role": "assistant", "content": "Hey"}, *chat[2:]], "u", "m"), "first reply")


def test_tokens_per_second():
    right(exercises.tokens_per_second(lambda completion, seconds: completion.usage.completion_tokens / seconds))
    right(exercises.tokens_per_second(lambda c, s: (c.usage.total_tokens - c.usage.prompt_tokens) / s))
    wrong(exercises.tokens_per_second(lambda c, s: c.usage.total_tokens / s), "not the prompt's")
    wrong(exercises.tokens_per_second(lambda c, s: c.usage.completion_tokens * s), "usage says")
    wrong(exercises.tokens_per_second(lambda c, s: c.tokens / s), "raised AttributeError")


# ----------------------------------------------------------------------------- 09 thinking

SUM3 = [{"role": "user", "content": "What is 17 + 25 + 30?"}]


def _thinking_message(model, tokenizer, question=SUM3, max_new_tokens=256):
    prompt = tokenizer.apply_chat_template(question, add_generation_prompt=True, tokenize=False, enable_thinking=True)
    inputs = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")
    raw = tokenizer.decode(
        model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)[0, inputs["input_ids"].shape[1] :]
    )
    return prompt, tokenizer.parse_response(raw, schema=chatkit.thinking.response_template(tokenizer), prefix=prompt)


def test_thought_message(chat_model):
    model, tokenizer = chat_model
    prompt, message = _thinking_message(model, tokenizer)
    right(exercises.thought_message(message, model, tokenizer, SUM3))
    wrong(exercises.thought_message(str(message), model, tokenizer, SUM3), "a dict")
    off = tokenizer.apply_chat_template(SUM3, add_generation_prompt=True, tokenize=False)
    direct = chatkit.reply(model, tokenizer, SUM3, max_new_tokens=64)
    no_prefix = tokenizer.parse_response(direct, schema=chatkit.thinking.response_template(tokenizer), prefix=off)
    wrong(exercises.thought_message(no_prefix, model, tokenizer, SUM3), "switch thinking on")
    cut = _thinking_message(model, tokenizer, max_new_tokens=8)[1]
    wrong(exercises.thought_message(cut, model, tokenizer, SUM3), "not the greedy reply")
    assert repr(exercises.thought_message(..., model, tokenizer, SUM3)).startswith("Not answered yet")


def test_empty_thought(chat_model):
    model, tokenizer = chat_model
    opened = tokenizer.apply_chat_template(SUM3, add_generation_prompt=True, tokenize=False, enable_thinking=True)
    right(exercises.empty_thought(opened + "\n</think>\n\n", model, tokenizer, SUM3))
    wrong(exercises.empty_thought(opened, model, tokenizer, SUM3), "close it at once")
    wrong(exercises.empty_thought(opened + "So 72.\n</think>\n\n", model, tokenizer, SUM3), "write nothing")
    off = tokenizer.apply_chat_template(SUM3, add_generation_prompt=True, tokenize=False)
    wrong(exercises.empty_thought(off + "</think>", model, tokenizer, SUM3), "with thinking on")


def test_dropped_thought(chat_model):
    _, tokenizer = chat_model
    message = {"role": "assistant", "thinking": "17 + 25: 7 + 5 = 12 and 10 + 20 + 10 = 40, so 42.", "content": "72."}
    block = tokenizer("<think>\n" + message["thinking"] + "\n</think>\n\n", add_special_tokens=False).input_ids
    right(exercises.dropped_thought(len(block), message, tokenizer, SUM3))
    wrong(exercises.dropped_thought(len(block) + 3, message, tokenizer, SUM3), "with its thought and without")
    wrong(exercises.dropped_thought(float(len(block)), message, tokenizer, SUM3), "whole number")


# ----------------------------------------------------------------------------- 10 images


@pytest.fixture(scope="module")
def vision_model():
    from transformers import AutoModelForImageTextToText, AutoProcessor

    path = chatkit.embedded_vision_path()
    return AutoModelForImageTextToText.from_pretrained(path), AutoProcessor.from_pretrained(path)


def _picture_chat(images, text):
    blocks = [{"type": "image", "image": image} for image in images]
    return [{"role": "user", "content": blocks + [{"type": "text", "text": text}]}]


def test_image_token_count(vision_model):
    _, processor = vision_model
    first, second = chatkit.picture_questions.held_out_comparisons(1)[0]["images"]
    two = _picture_chat([first, second], "Which picture has more things?")
    ids = processor.apply_chat_template(
        two, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )["input_ids"]
    right(exercises.image_token_count(2 * 64, processor, two))
    wrong(exercises.image_token_count(ids.shape[1], processor, two), "count only those")
    wrong(exercises.image_token_count(64, processor, two), "count the ids")
    wrong(exercises.image_token_count("128", processor, two), "whole number")


def test_picture_answer(vision_model):
    model, processor = vision_model
    q = chatkit.picture_questions.held_out_image_questions(2)[1]
    picture, question = q["image"], q["chat"][0]["content"][-1]["text"]
    inputs = processor.apply_chat_template(
        _picture_chat([picture], question),
        add_generation_prompt=True,
        tokenize=True,
        return_dict=True,
        return_tensors="pt",
    )
    out = model.generate(**inputs, max_new_tokens=48, do_sample=False)
    new = out[0, inputs["input_ids"].shape[1] :]
    right(
        exercises.picture_answer(processor.decode(new, skip_special_tokens=True), model, processor, picture, question)
    )
    wrong(exercises.picture_answer(processor.decode(out[0]), model, processor, picture, question), "new tokens")
    wrong(exercises.picture_answer("The circle is blue. Obviously", model, processor, picture, question), "greedy")
    wrong(exercises.picture_answer(new, model, processor, picture, question), "as text")


def test_two_pictures(vision_model):
    _, processor = vision_model
    first, second = chatkit.picture_questions.held_out_comparisons(1)[0]["images"]
    right(exercises.two_pictures(_picture_chat([first, second], "Which has more?"), processor, first, second))
    wrong(
        exercises.two_pictures(_picture_chat([second, first], "Which has more?"), processor, first, second),
        "first then",
    )
    wrong(
        exercises.two_pictures(_picture_chat([first], "Which has more?"), processor, first, second), "two image blocks"
    )
    split = _picture_chat([first], "Look.") + [{"role": "assistant", "content": "OK."}]
    wrong(exercises.two_pictures(split + _picture_chat([second], "Which?"), processor, first, second), "two image")
    no_text = [{"role": "user", "content": _picture_chat([first, second], "")[0]["content"][:2]}]
    wrong(exercises.two_pictures(no_text, processor, first, second), "text block")
    wrong(exercises.two_pictures("two pictures", processor, first, second), "list of messages")
