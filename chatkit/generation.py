"""Generating a chat reply by hand: settings that mean what they say, a plain reply, a streamed reply.

`generation_settings()` turns the knobs people reach for (max_new_tokens, temperature, top_p,
repetition_penalty) into `generate` keyword arguments. Temperature 0 means greedy decoding
(`do_sample=False`, no sampling flags passed, so transformers has nothing to warn about);
temperature > 0 means sampling. Impossible settings raise a ValueError that says what to pass.

`reply()` is the pipeline taken apart: apply the chat template, tokenize without adding special
tokens again, move to the model's device, generate, decode only the new tokens.
`stream_reply()` runs the same generation in a background thread and yields text as it comes,
the way chat apps show a reply; a `threading.Event` stops it at the next token.

Both prefill like the pipeline: when the chat's last message is from the assistant, the model
continues that message (`continue_final_message=True`) instead of starting a new one. Both also take a
model behind a server (`chatkit.serving.ServerModel`, tokenizer None): the server does the five steps.

Thinking: `enable_thinking=True` (or False) goes to the chat template, which switches a thinking model's
thought on (or off); a template without the switch ignores it, and None (the default) leaves the template's
own default. With it on, the reply is the thought, `</think>`, then the answer (Qwen3's format);
`split_thought()` cuts a reply, whole or as far as it has streamed, into the two.

The context guard: a prompt that, with the `max_new_tokens` asked for, does not fit in the model's
context (its config's `max_position_embeddings`) is refused with `ContextTooLongError`, naming the
numbers and the fix (`chatkit.fit_to_context`), instead of generating nonsense. A huge prompt is refused
from its length in characters alone, before it is tokenized: no token spells more characters than the
longest one in the vocabulary.

Example:
    >>> import chatkit
    >>> model, tokenizer = chatkit.load_model(chatkit.embedded_model_path())
    >>> reply(model, tokenizer, [{"role": "user", "content": "Hi!"}], max_new_tokens=32)
    'Hello! How can I help you today?'
    >>> for chunk in stream_reply(model, tokenizer, [{"role": "user", "content": "What is 12 + 30?"}]):
    ...     print(chunk, end="")
    2 + 0 = 2 and 10 + 30 = 40, so 12 + 30 = 42.
"""

import math
import numbers
import threading
import weakref

from .chat import validate_chat

# generate() keywords that only make sense when sampling; kept out of greedy settings.
SAMPLING_ONLY = ("temperature", "top_p", "top_k", "min_p", "typical_p")
# Below this, dividing the scores by the temperature overflows (inf, then nan) and generate fails;
# such a temperature means "always the most likely token", which temperature 0 (greedy) does exactly.
MIN_TEMPERATURE = 1e-2


class ContextTooLongError(ValueError):
    """The prompt plus the reply asked for do not fit in the model's context; the message says how to fit."""


def _is_number(value):
    """A real, finite number (not a bool, not nan, not inf)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def generation_settings(max_new_tokens=256, temperature=0.0, top_p=None, repetition_penalty=None, **extra):
    """`generate` keyword arguments for these settings; temperature 0 (or None) means greedy decoding.

    - temperature 0 or None: `do_sample=False`, and neither temperature nor top_p is passed
      (transformers would warn that they are ignored); a top_p given with temperature 0 is checked,
      then left out, so a UI may keep its top_p slider where it is;
    - temperature > 0: `do_sample=True, temperature=...` (and `top_p=...` when given);
    - repetition_penalty: passed when given (1.0 is "no penalty"; above 1 discourages repeats);
    - any other keyword (eos_token_id, stopping_criteria, ...) is passed through unchanged.

    Raises ValueError for a negative temperature or one between 0 and MIN_TEMPERATURE (0.01), a top_p
    outside (0, 1], a non-positive max_new_tokens or repetition_penalty, or a `do_sample` that
    contradicts the temperature.

    Example:
        >>> generation_settings(max_new_tokens=64)
        {'max_new_tokens': 64, 'do_sample': False}
        >>> generation_settings(temperature=0.7, top_p=0.9)
        {'max_new_tokens': 256, 'do_sample': True, 'temperature': 0.7, 'top_p': 0.9}
    """
    if not isinstance(max_new_tokens, numbers.Integral) or isinstance(max_new_tokens, bool) or max_new_tokens < 1:
        raise ValueError(
            f"max_new_tokens must be a positive whole number of tokens, got {max_new_tokens!r}; "
            "pass e.g. max_new_tokens=128"
        )
    if temperature is not None and not (_is_number(temperature) or isinstance(temperature, float)):
        raise ValueError(
            f"temperature must be a number, got {temperature!r}; pass 0 for greedy decoding or e.g. 0.7 to sample"
        )
    if temperature is not None and (not _is_number(temperature) or temperature < 0):
        raise ValueError(
            f"temperature must be 0 or more and finite, got {temperature!r}; pass temperature=0 for greedy decoding "
            "(always the most likely token) or a positive value such as 0.7 to sample"
        )
    if temperature is not None and 0 < temperature < MIN_TEMPERATURE:
        raise ValueError(
            f"temperature={temperature!r} is too small to sample with: dividing the scores by it overflows "
            f"to inf and nan. Pass temperature=0 for greedy decoding (what a tiny temperature tends to), "
            f"or at least {MIN_TEMPERATURE}"
        )
    if top_p is not None and (not _is_number(top_p) or not 0 < top_p <= 1):
        raise ValueError(
            f"top_p must be in (0, 1], got {top_p!r}; pass e.g. top_p=0.9 to sample from the smallest set "
            "of tokens holding 90% of the probability, or top_p=None (same as 1.0) to turn it off"
        )
    if repetition_penalty is not None and (not _is_number(repetition_penalty) or repetition_penalty <= 0):
        raise ValueError(
            f"repetition_penalty must be a positive number, got {repetition_penalty!r}; 1.0 means no penalty, "
            "values such as 1.2 discourage repeating tokens"
        )
    greedy = temperature is None or temperature == 0
    do_sample = extra.pop("do_sample", None)
    if do_sample is not None and bool(do_sample) == greedy:
        if greedy:
            raise ValueError(
                "do_sample=True with temperature 0 is rejected by transformers; pass temperature=0.7 "
                "(or any positive value) to sample, or drop do_sample for greedy decoding"
            )
        raise ValueError(
            f"do_sample=False contradicts temperature={temperature}; pass temperature=0 for greedy "
            "decoding, or drop do_sample to sample at that temperature"
        )
    settings = {"max_new_tokens": int(max_new_tokens), "do_sample": not greedy}
    if greedy:
        for name in SAMPLING_ONLY:
            extra.pop(name, None)  # ignored by greedy decoding; passing them only makes generate warn
    else:
        settings["temperature"] = float(temperature)
        if top_p is not None:
            settings["top_p"] = float(top_p)
    if repetition_penalty is not None:
        settings["repetition_penalty"] = float(repetition_penalty)
    settings.update(extra)
    return settings


def _thinking_switch(enable_thinking):
    """The chat template keyword for the thinking switch: none when it is None (the template's default)."""
    if enable_thinking is None:
        return {}
    if not isinstance(enable_thinking, bool):
        raise ValueError(
            f"enable_thinking must be True, False or None (the chat template's default), got {enable_thinking!r}"
        )
    return {"enable_thinking": enable_thinking}


def _template_kwargs(chat, enable_thinking=None):
    """How to close the prompt: a new assistant turn, or (last message from the assistant) prefill it."""
    prefill = chat[-1]["role"] == "assistant"
    return {
        "add_generation_prompt": not prefill,
        "continue_final_message": prefill,
        **_thinking_switch(enable_thinking),
    }


def _check_tokenizer(tokenizer):
    if not callable(getattr(tokenizer, "apply_chat_template", None)):
        got = "None" if tokenizer is None else f"a {type(tokenizer).__name__}"
        raise ValueError(
            f"a local model needs its tokenizer to write the prompt, got {got}; pass the one chatkit.load_model "
            "returned (model, tokenizer = chatkit.load_model(name)) or chatkit.load_tokenizer(name). Only a "
            "model behind a server (chatkit.serving.ServerModel) takes tokenizer=None"
        )


def context_length(model):
    """The most tokens `model` reads at once (its config's max_position_embeddings), or None when unknown."""
    config = getattr(model, "config", None)
    if callable(getattr(config, "get_text_config", None)):
        config = config.get_text_config(decoder=True)
    limit = getattr(config, "max_position_embeddings", None)
    return limit if isinstance(limit, int) and limit > 0 else None


_LONGEST_TOKEN = weakref.WeakKeyDictionary()  # tokenizer -> characters in its longest token, found once


def _longest_token(tokenizer):
    if tokenizer not in _LONGEST_TOKEN:
        _LONGEST_TOKEN[tokenizer] = max(map(len, tokenizer.get_vocab()), default=0)
    return _LONGEST_TOKEN[tokenizer]


def _too_long(prompt, max_new_tokens, limit):
    return ContextTooLongError(
        f"the prompt takes {prompt} tokens, and max_new_tokens={max_new_tokens} asks for up to that many more: "
        f"more than the {limit:,} tokens this model reads at once (its max_position_embeddings); past that its "
        f"replies are nonsense. Fit the chat with chatkit.fit_to_context(chat, tokenizer, {limit}, "
        f"max_new_tokens={max_new_tokens}) (it drops the oldest turns), start a shorter chat, ask for fewer "
        "new tokens, or use a model with a longer context"
    )


def encode_prompt(model, tokenizer, chat, tools=None, max_new_tokens=0, enable_thinking=None, processor=None):
    """Steps 2 and 3 of a reply: the chat template's text, tokenized once, after the context guard.

    `enable_thinking` goes to the template when it is not None (see the module's docstring). With a
    `processor` (a vision-language model's), the processor renders and encodes the chat, its pictures
    included (`pixel_values` beside the ids), as `pipeline("image-text-to-text")` does.

    Raises ContextTooLongError when the prompt plus `max_new_tokens` exceed the model's context:
    from the text's length alone when it is sure (a 1 MB message is refused at once), else from the
    token count. Returns the inputs (input_ids, attention_mask) on the model's device.
    """
    limit = context_length(model)
    if processor is not None:
        inputs = processor.apply_chat_template(
            chat,
            tools=tools,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
            **_template_kwargs(chat, enable_thinking),
        )
        used = inputs["input_ids"].shape[1]
        if limit and used + max_new_tokens > limit:
            raise _too_long(f"{used:,}", max_new_tokens, limit)
        return inputs.to(model.device, dtype=model.dtype)  # pixel_values in the model's dtype; ids stay ints
    _check_tokenizer(tokenizer)
    text = tokenizer.apply_chat_template(chat, tools=tools, tokenize=False, **_template_kwargs(chat, enable_thinking))
    longest = _longest_token(tokenizer) if limit else 0
    at_least = math.ceil(len(text) / longest) if longest else 0  # tokens, known without tokenizing
    if limit and at_least + max_new_tokens > limit:
        raise _too_long(
            f"at least {at_least:,} ({len(text):,} characters, and no token of this tokenizer "
            f"spells more than {longest})",
            max_new_tokens,
            limit,
        )
    # tokenize without adding special tokens: the template already wrote the BOS
    inputs = tokenizer(text, add_special_tokens=False, return_tensors="pt")
    used = inputs["input_ids"].shape[1]
    if limit and used + max_new_tokens > limit:
        raise _too_long(f"{used:,}", max_new_tokens, limit)
    return inputs.to(model.device)


def reply(model, tokenizer, chat, tools=None, enable_thinking=None, processor=None, **settings):
    """The assistant's reply to `chat`, made in the five steps a text-generation pipeline takes.

    `settings` are those of `generation_settings()` (temperature 0, the default, is greedy).
    With greedy decoding the reply equals the pipeline's `generated_text[-1]["content"]`.
    `tools` (functions or JSON schemas) go to the chat template; the reply is then the raw text,
    tool calls included (`chatkit.tools.parse_reply` reads them). `enable_thinking` (True or False) switches
    a thinking model's thought on or off in the chat template; the reply then holds the thought too.
    A prompt that does not fit the model's context raises ContextTooLongError (see `encode_prompt`). A
    vision-language model takes its `processor` (the tokenizer may then be None): the chat's pictures reach it.
    """
    validate_chat(chat)
    switch = _thinking_switch(enable_thinking)
    if callable(getattr(model, "stream_chat", None)):  # a model behind a server (chatkit.serving.ServerModel)
        return "".join(model.stream_chat(chat, tools=tools, **switch, **settings))
    if processor is not None and tokenizer is None:
        tokenizer = processor.tokenizer  # step 5 decodes with it
    kwargs = generation_settings(**settings)
    # 1. the model and tokenizer are given; 2. the chat template turns messages into one string;
    # 3. tokenize it (without adding a second BOS), refusing a prompt too long for the model
    inputs = encode_prompt(model, tokenizer, chat, tools, kwargs["max_new_tokens"], enable_thinking, processor)
    # 4. generate
    output = model.generate(**inputs, **kwargs)
    # 5. decode only the new tokens, leaving out the end-of-turn token
    new_tokens = output[0, inputs["input_ids"].shape[1] :]
    return tokenizer.decode(new_tokens, skip_special_tokens=True)


def _event_stopping_criteria(*events):
    """A StoppingCriteria that ends generation as soon as any of `events` is set."""
    import torch
    from transformers import StoppingCriteria

    class StopOnEvent(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            stop = any(event.is_set() for event in events)
            return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)

    return StopOnEvent()


def stream_reply(model, tokenizer, chat, stop_event=None, tools=None, enable_thinking=None, processor=None, **settings):
    """Yield the assistant's reply to `chat` in text chunks, as the model writes them.

    Generation runs in a background thread feeding a `TextIteratorStreamer`; this generator reads
    from it. Set `stop_event` (a `threading.Event`) to stop at the next token, e.g. from a Stop
    button; closing the generator early stops it too. An exception raised inside `generate` is
    re-raised here, in the caller. The chunks joined equal `reply()` with the same settings (and `tools`,
    `enable_thinking`); with thinking on, `split_thought` cuts the text so far into thought and answer.
    Like `reply()`, it refuses a prompt too long for the model's context before any thread starts. A
    vision-language model takes its `processor` too (`encode_prompt`): the chat's image blocks then reach it.
    """
    from transformers import StoppingCriteriaList, TextIteratorStreamer

    validate_chat(chat)
    if stop_event is not None and not callable(getattr(stop_event, "is_set", None)):
        raise ValueError(f"stop_event must be a threading.Event (or None), got {type(stop_event).__name__}")
    kwargs = generation_settings(**settings)  # checked here, before any thread starts
    switch = _thinking_switch(enable_thinking)
    if callable(getattr(model, "stream_chat", None)):  # a model behind a server: it streams itself
        yield from model.stream_chat(chat, stop_event=stop_event, tools=tools, **switch, **settings)
        return
    if processor is not None and tokenizer is None:
        tokenizer = processor.tokenizer  # the streamer decodes with it
    inputs = encode_prompt(model, tokenizer, chat, tools, kwargs["max_new_tokens"], enable_thinking, processor)
    closed = threading.Event()  # set when the reader stops early
    events = [closed] + ([stop_event] if stop_event is not None else [])
    criteria = StoppingCriteriaList(kwargs.pop("stopping_criteria", None) or [])
    criteria.append(_event_stopping_criteria(*events))
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    failure = []

    def run():
        try:
            model.generate(**inputs, streamer=streamer, stopping_criteria=criteria, **kwargs)
        except BaseException as error:  # handed to the reader below, never swallowed
            failure.append(error)
            streamer.end()  # wake the reader up; generate did not get to end the stream

    thread = threading.Thread(target=run, name="chatkit-generate", daemon=True)
    thread.start()
    try:
        for chunk in streamer:
            if chunk:
                yield chunk
    finally:
        closed.set()
        thread.join()
    if failure:
        raise failure[0]


def split_thought(text, opened=False):
    """(thought, answer) of a reply written with thinking on: the whole reply, or as much as has streamed.

    The thought runs from `<think>` to `</think>`. `opened`: the prompt already wrote the `<think>` (the
    embedded model's template does; Qwen3's leaves it to the model, whose reply then starts with it).
    Until `</think>` arrives, an opened thought holds all the text (a reply stopped mid-thought is all
    thought, with an empty answer); a reply that opened none is all answer (a model that does not think).

    Example:
        >>> split_thought("Add the tens: 10 + 30 = 40.\\n</think>\\n\\n42", opened=True)
        ('Add the tens: 10 + 30 = 40.', '42')
        >>> split_thought("<think>\\nAdd the tens")
        ('Add the tens', '')
        >>> split_thought("42")
        ('', '42')
    """
    start = text.lstrip()
    if start.startswith("<think>"):
        text, opened = start.removeprefix("<think>"), True
    thought, closed, answer = text.partition("</think>")
    if not closed:
        thought, answer = (text, "") if opened else ("", text)
    return thought.strip(), answer.lstrip()
