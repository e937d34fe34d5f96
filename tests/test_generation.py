"""chatkit.generation on the embedded model: settings, the five-step reply, streaming, stopping, errors."""

import logging
import threading

import pytest
import torch
from helpers import ScriptedModel
from transformers import StoppingCriteria, StoppingCriteriaList, pipeline
from transformers.utils import logging as hf_logging

import chatkit
from chatkit import generation_settings, reply, stream_reply

CHAT = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is the capital of France?"},
]


@pytest.fixture(scope="session")
def model_and_tokenizer():
    return chatkit.load_model(chatkit.embedded_model_path(), device_map=None)


@pytest.fixture(scope="session")
def model(model_and_tokenizer):
    return model_and_tokenizer[0]


@pytest.fixture(scope="session")
def tokenizer(model_and_tokenizer):
    return model_and_tokenizer[1]


# ---------------------------------------------------------------- generation_settings


def test_temperature_zero_or_none_is_greedy_without_sampling_flags():
    assert generation_settings(max_new_tokens=64) == {"max_new_tokens": 64, "do_sample": False}
    assert generation_settings(temperature=None, top_p=0.9) == {"max_new_tokens": 256, "do_sample": False}
    assert generation_settings(temperature=0, top_k=5) == {"max_new_tokens": 256, "do_sample": False}


def test_positive_temperature_samples():
    assert generation_settings(temperature=0.7, top_p=0.9, repetition_penalty=1.2) == {
        "max_new_tokens": 256,
        "do_sample": True,
        "temperature": 0.7,
        "top_p": 0.9,
        "repetition_penalty": 1.2,
    }


def test_settings_pass_through_other_keywords_and_are_idempotent():
    settings = generation_settings(temperature=0.5, eos_token_id=3)
    assert settings["eos_token_id"] == 3
    assert generation_settings(**settings) == settings
    assert generation_settings(**generation_settings()) == generation_settings()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"temperature": -0.1}, "pass temperature=0 for greedy"),
        ({"temperature": "hot"}, "temperature must be a number"),
        ({"temperature": float("nan")}, "temperature must be 0 or more and finite, got nan"),
        ({"temperature": float("inf")}, "temperature must be 0 or more and finite, got inf"),
        ({"temperature": 0.7, "top_p": float("nan")}, "top_p must be in"),
        ({"repetition_penalty": float("inf")}, "repetition_penalty must be a positive number"),
        ({"temperature": 0.7, "top_p": 0}, "top_p must be in \\(0, 1\\]"),
        ({"temperature": 0.7, "top_p": 1.5}, "top_p=0.9"),
        ({"top_p": -1}, "top_p must be in"),
        ({"max_new_tokens": 0}, "max_new_tokens=128"),
        ({"max_new_tokens": 2.5}, "positive whole number"),
        ({"repetition_penalty": 0}, "1.0 means no penalty"),
        ({"do_sample": True}, "pass temperature=0.7"),
        ({"do_sample": False, "temperature": 0.8}, "pass temperature=0 for greedy"),
    ],
)
def test_bad_settings_say_what_to_pass(kwargs, message):
    with pytest.raises(ValueError, match=message):
        generation_settings(**kwargs)


# ---------------------------------------------------------------- reply


def _manual_greedy(model, tokenizer, chat, max_new_tokens):
    inputs = tokenizer.apply_chat_template(chat, add_generation_prompt=True, return_dict=True, return_tensors="pt")
    output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    return tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_temperature_zero_is_greedy_and_generate_does_not_warn(model, tokenizer):
    capture = _Capture()
    logger = hf_logging.get_logger("transformers")
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_warning()
    logger.addHandler(capture)
    try:
        ours = reply(model, tokenizer, CHAT, max_new_tokens=12, temperature=0)
        # what the seed did: temperature=0. straight into generate; transformers warns and ignores it
        inputs = tokenizer.apply_chat_template(CHAT, add_generation_prompt=True, return_dict=True, return_tensors="pt")
        model.generate(**inputs, max_new_tokens=2, temperature=0.0)
    finally:
        logger.removeHandler(capture)
        hf_logging.set_verbosity(verbosity)
    assert ours == _manual_greedy(model, tokenizer, CHAT, 12)
    flagged = [m for m in capture.messages if "generation flags are not valid" in m]
    assert len(flagged) == 1, capture.messages  # the raw call warned; chatkit's settings did not


def test_sampling_with_temperature_zero_is_what_transformers_rejects(model, tokenizer):
    inputs = tokenizer.apply_chat_template(CHAT, add_generation_prompt=True, return_dict=True, return_tensors="pt")
    with pytest.raises(ValueError, match="temperature"):
        model.generate(**inputs, max_new_tokens=2, do_sample=True, temperature=0.0)


def test_reply_equals_the_pipeline_greedy(model, tokenizer):
    pipe = pipeline("text-generation", model=model, tokenizer=tokenizer)
    from_pipeline = pipe(CHAT, max_new_tokens=16, do_sample=False)[0]["generated_text"][-1]["content"]
    assert reply(model, tokenizer, CHAT, max_new_tokens=16) == from_pipeline


def test_reply_prefills_when_the_last_message_is_the_assistants(model, tokenizer):
    prefix = "The capital is"
    chat = CHAT + [{"role": "assistant", "content": prefix}]
    pipe = pipeline("text-generation", model=model, tokenizer=tokenizer)
    from_pipeline = pipe(chat, max_new_tokens=8, do_sample=False)[0]["generated_text"][-1]["content"]
    assert from_pipeline == prefix + reply(model, tokenizer, chat, max_new_tokens=8)


def test_reply_validates_the_chat(model, tokenizer):
    with pytest.raises(ValueError, match="message 0"):
        reply(model, tokenizer, [{"role": "bot", "content": "Hi"}])


def test_seeded_sampling_repeats(model, tokenizer):
    chatkit.seed_everything(3)
    first = reply(model, tokenizer, CHAT, max_new_tokens=20, temperature=1.0, top_p=0.95)
    chatkit.seed_everything(3)
    assert reply(model, tokenizer, CHAT, max_new_tokens=20, temperature=1.0, top_p=0.95) == first


# ---------------------------------------------------------------- stream_reply


def test_streamed_chunks_join_to_the_reply_greedy(model, tokenizer):
    chunks = list(stream_reply(model, tokenizer, CHAT, max_new_tokens=20))
    assert chunks and all(isinstance(c, str) and c for c in chunks)
    assert "".join(chunks) == reply(model, tokenizer, CHAT, max_new_tokens=20)


def test_streamed_chunks_join_to_the_reply_when_sampling(model, tokenizer):
    # sampled bytes from a small model decode to varied text (spaces, partial characters): a harder case
    chatkit.seed_everything(7)
    streamed = "".join(stream_reply(model, tokenizer, CHAT, max_new_tokens=40, temperature=1.0))
    chatkit.seed_everything(7)
    assert streamed == reply(model, tokenizer, CHAT, max_new_tokens=40, temperature=1.0)


def _count_tokens(tokenizer, text):
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def test_stop_event_stops_at_the_next_token(model, tokenizer):
    # min_new_tokens keeps the end token away, so without the event all 120 tokens would come
    chatkit.seed_everything(0)
    settings = dict(max_new_tokens=120, min_new_tokens=120, temperature=1.0)
    stop = threading.Event()
    seen = []
    for chunk in stream_reply(model, tokenizer, CHAT, stop_event=stop, **settings):
        seen.append(chunk)
        stop.set()
    assert _count_tokens(tokenizer, "".join(seen)) < 60


def test_an_early_stopped_stream_generates_fewer_tokens_than_asked(model, tokenizer):
    calls = []

    class Count(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            calls.append(1)
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    stop = threading.Event()
    stop.set()
    list(
        stream_reply(
            model,
            tokenizer,
            CHAT,
            stop_event=stop,
            max_new_tokens=50,
            stopping_criteria=StoppingCriteriaList([Count()]),
        )
    )
    assert len(calls) == 1  # one token generated, then the event stopped it


def test_closing_the_stream_early_stops_the_thread(model, tokenizer):
    stream = stream_reply(model, tokenizer, CHAT, max_new_tokens=400)  # CHAT + 400 fits the 512-token context
    next(stream)
    stream.close()  # joins the generate thread, which stops at its next token
    assert not any(t.name == "chatkit-generate" and t.is_alive() for t in threading.enumerate())


def test_errors_in_the_generate_thread_are_raised_in_the_caller(model, tokenizer):
    with pytest.raises(ValueError, match="not_a_generate_argument"):
        list(stream_reply(model, tokenizer, CHAT, max_new_tokens=5, not_a_generate_argument=1))

    class Boom(StoppingCriteria):
        def __init__(self):
            self.steps = 0

        def __call__(self, input_ids, scores, **kwargs):
            self.steps += 1
            if self.steps == 3:
                raise RuntimeError("boom at step 3")
            return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    received = []
    with pytest.raises(RuntimeError, match="boom at step 3"):
        for chunk in stream_reply(model, tokenizer, CHAT, max_new_tokens=20, stopping_criteria=[Boom()]):
            received.append(chunk)


def test_stream_reply_checks_its_arguments_before_starting(model, tokenizer):
    with pytest.raises(ValueError, match="message 1"):
        next(stream_reply(model, tokenizer, [CHAT[0], {"role": "user", "content": 3}]))
    with pytest.raises(ValueError, match="threading.Event"):
        next(stream_reply(model, tokenizer, CHAT, stop_event=True))
    with pytest.raises(ValueError, match="temperature"):
        next(stream_reply(model, tokenizer, CHAT, temperature=-1))


# ---------------------------------------------------------------- hostile input


def test_a_tiny_temperature_is_refused_and_zero_stays_greedy():
    # was: accepted here, then generate failed on inf/nan scores
    with pytest.raises(ValueError, match="temperature=1e-300 is too small.*temperature=0 for greedy"):
        generation_settings(temperature=1e-300)
    assert generation_settings(temperature=0.01)["temperature"] == 0.01
    assert generation_settings(temperature=0)["do_sample"] is False


def test_a_missing_tokenizer_says_how_to_get_one(model):
    # was: AttributeError: 'NoneType' object has no attribute 'apply_chat_template'
    for call in (lambda: reply(model, None, CHAT), lambda: next(stream_reply(model, None, CHAT))):
        with pytest.raises(ValueError, match=r"needs its tokenizer.*got None.*chatkit.load_model"):
            call()


def test_a_prompt_longer_than_the_context_is_refused_with_the_numbers_and_the_fix(model, tokenizer):
    chat = [{"role": "user", "content": "Tell me more. " * 150}]
    prompt = chatkit.count_prompt_tokens(chat, tokenizer)
    assert prompt > 512 == model.config.max_position_embeddings
    for call in (
        lambda: reply(model, tokenizer, chat, max_new_tokens=16),
        lambda: next(stream_reply(model, tokenizer, chat, max_new_tokens=16)),
    ):
        with pytest.raises(chatkit.generation.ContextTooLongError) as caught:
            call()
        message = str(caught.value)
        assert f"the prompt takes {prompt:,} tokens, and max_new_tokens=16" in message
        assert "the 512 tokens this model reads at once" in message
        assert "chatkit.fit_to_context(chat, tokenizer, 512, max_new_tokens=16)" in message
        assert "a model with a longer context" in message
    assert isinstance(caught.value, ValueError)


def test_the_reply_asked_for_counts_too_and_a_prompt_that_fits_exactly_runs(model, tokenizer):
    chat = [{"role": "user", "content": "What is the capital of France? " * 20}]
    prompt = chatkit.count_prompt_tokens(chat, tokenizer)
    with pytest.raises(chatkit.generation.ContextTooLongError, match=f"max_new_tokens={513 - prompt} "):
        reply(model, tokenizer, chat, max_new_tokens=513 - prompt)
    assert isinstance(reply(model, tokenizer, chat, max_new_tokens=512 - prompt), str)


def test_a_one_megabyte_message_is_refused_at_once_without_tokenizing_it(model, tokenizer, monkeypatch):
    # was: reply ran for 13+ minutes at 3 GB
    import time

    chat = CHAT + [{"role": "assistant", "content": "Paris."}, {"role": "user", "content": "x" * 1_000_000}]
    tokenized = []
    monkeypatch.setattr(type(tokenizer), "__call__", lambda self, *a, **k: tokenized.append(1))
    start = time.perf_counter()
    for call in (lambda: reply(model, tokenizer, chat), lambda: next(stream_reply(model, tokenizer, chat))):
        with pytest.raises(
            chatkit.generation.ContextTooLongError,
            match=r"the prompt takes at least [\d,]+ "
            r"\(1,000,\d+ characters, and no token of this tokenizer spells more than \d+\)",
        ):
            call()
    assert time.perf_counter() - start < 5 and not tokenized
    assert chat[-1]["content"] == "x" * 1_000_000  # nothing the user typed is lost


# ---------------------------------------------------------------- thinking (hand-written replies: the shipped
# weights do not think yet, so a scripted model writes the thought)
THOUGHT_REPLY = "12 + 30: the tens make 40, the units 2.\n</think>\n\n12 + 30 = 42."


def test_enable_thinking_goes_to_the_template_and_the_reply_holds_the_thought(tokenizer):
    from chatkit.tools import EMBEDDED_RESPONSE_TEMPLATE

    scripted = ScriptedModel(tokenizer, THOUGHT_REPLY)
    chat = [{"role": "user", "content": "What is 12 + 30?"}]
    text = reply(scripted, tokenizer, chat, enable_thinking=True)
    assert "".join(stream_reply(scripted, tokenizer, chat, enable_thinking=True)) == text == THOUGHT_REPLY
    prompt = tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=False, enable_thinking=True)
    assert scripted.prompts == [prompt, prompt] and prompt.endswith("<|im_start|>assistant\n<think>\n")
    message = tokenizer.parse_response(text, schema=EMBEDDED_RESPONSE_TEMPLATE, prefix=prompt)
    assert chatkit.generation.split_thought(text, opened=True) == (message["thinking"], message["content"])
    assert message["content"] == "12 + 30 = 42."


def test_without_enable_thinking_the_prompt_is_what_it_was(tokenizer, monkeypatch):
    scripted = ScriptedModel(tokenizer, "42.")
    seen = []
    render = type(tokenizer).apply_chat_template
    monkeypatch.setattr(
        type(tokenizer), "apply_chat_template", lambda self, *a, **k: seen.append(k) or render(self, *a, **k)
    )
    reply(scripted, tokenizer, CHAT)
    list(stream_reply(scripted, tokenizer, CHAT))
    assert all("enable_thinking" not in kwargs for kwargs in seen)  # the template's own default, untouched
    off = reply(scripted, tokenizer, CHAT, enable_thinking=False)
    assert off == "42." and scripted.prompts[0] == scripted.prompts[1] == scripted.prompts[2]
    assert seen[-1]["enable_thinking"] is False
    assert not scripted.prompts[0].endswith("<think>\n")
    with pytest.raises(ValueError, match="enable_thinking must be True, False or None"):
        reply(scripted, tokenizer, CHAT, enable_thinking="yes")


def test_enable_thinking_reaches_a_model_behind_a_server_only_when_given():
    class Served:  # what chatkit.serving.ServerModel offers: stream_chat
        def __init__(self):
            self.calls = []

        def stream_chat(self, chat, stop_event=None, tools=None, **settings):
            self.calls.append(settings)
            yield "42."

    served = Served()
    assert reply(served, None, CHAT, enable_thinking=True) == "42."
    assert list(stream_reply(served, None, CHAT, enable_thinking=False)) == ["42."]
    reply(served, None, CHAT)
    assert [call.get("enable_thinking", "absent") for call in served.calls] == [True, False, "absent"]


def test_a_streamed_thought_is_split_as_it_arrives_even_when_a_tag_spans_two_chunks():
    from chatkit.generation import split_thought

    chunks = ["12 + 30: the", " tens make 40.\n</th", "ink>\n\n12 + 30", " = 42."]
    seen = [split_thought("".join(chunks[: n + 1]), opened=True) for n in range(len(chunks))]
    assert seen == [
        ("12 + 30: the", ""),
        ("12 + 30: the tens make 40.\n</th", ""),  # not closed yet: still thought (folded while streaming)
        ("12 + 30: the tens make 40.", "12 + 30"),
        ("12 + 30: the tens make 40.", "12 + 30 = 42."),
    ]
    # Qwen3's template leaves the <think> to the model: the reply opens the thought itself
    assert split_thought("<think>\nHm.\n</think>\n\nHi!") == ("Hm.", "Hi!")
    assert split_thought("<think>\nHm, let me") == ("Hm, let me", "")  # stopped mid-thought
    assert split_thought("", opened=True) == ("", "")
    assert split_thought("Hi!") == ("", "Hi!")  # a model that does not think: all answer
    assert split_thought("\n</think>\n\nHi!", opened=True) == ("", "Hi!")  # an empty thought
