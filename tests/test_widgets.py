"""The chat widget driven as a reader's clicks drive it, without a browser: no frontend is needed for
ipywidgets objects; setting the input's value is what pressing Enter sends to the kernel."""

import copy
import threading
import time

import pytest
from helpers import ScriptedModel

import chatkit
from chatkit import widgets as chat_widgets
from chatkit.generation import reply
from chatkit.widgets import ChatWidget, message_html

MAX_NEW_TOKENS = 12


@pytest.fixture(scope="session")
def embedded():
    return chatkit.load_model(chatkit.embedded_model_path())


@pytest.fixture
def widget(embedded):
    model, tokenizer = embedded
    return ChatWidget(model, tokenizer, max_new_tokens=MAX_NEW_TOKENS)


def press_enter(widget, text):
    """What the browser sends when the reader types `text` and presses Enter: "submit", then the value."""
    widget.input._handle_string_msg(None, {"event": "submit"}, None)
    type_only(widget, text)


def type_only(widget, text):
    """Typing and then clicking elsewhere: the box sends its value when it loses focus."""
    widget.input.value = text


def messages_in_view(widget):
    return [(tuple(view._dom_classes), view.value) for view in widget.view.children]


class ScriptedStream:
    """Stands in for `stream_reply`: yields given chunks, each released by the test (or when stopped)."""

    def __init__(self, chunks, fail_after=None):
        self.chunks = chunks
        self.fail_after = fail_after
        self.release = threading.Semaphore(0)
        self.chats = []
        self.settings = []

    def __call__(self, model, tokenizer, chat, stop_event=None, **settings):
        self.chats.append(copy.deepcopy(chat))
        self.settings.append(settings)
        for index, chunk in enumerate(self.chunks):
            while not self.release.acquire(timeout=0.01):
                if stop_event is not None and stop_event.is_set():
                    return
            if self.fail_after == index:
                raise RuntimeError("CUDA out of memory (scripted)")
            yield chunk

    def let_through(self, count=1):
        for _ in range(count):
            self.release.release()


def wait_until(condition, timeout=10):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the widget"
        time.sleep(0.005)


def test_enter_sends_and_the_reply_is_the_models_greedy_reply(widget, embedded):
    model, tokenizer = embedded
    press_enter(widget, "  Hello there!  ")
    assert widget.wait(60)
    history = widget.history
    expected_chat = [
        {"role": "system", "content": chat_widgets.DEFAULT_SYSTEM_PROMPT},
        {"role": "user", "content": "Hello there!"},
    ]
    assert history[:2] == expected_chat
    assert len(history) == 3 and history[2]["role"] == "assistant"
    assert history[2]["content"] == reply(model, tokenizer, expected_chat, max_new_tokens=MAX_NEW_TOKENS)
    view = messages_in_view(widget)
    assert [classes for classes, _ in view] == [
        ("chatkit-message", "chatkit-user"),
        ("chatkit-message", "chatkit-assistant"),
    ]
    assert "Hello there!" in view[0][1]
    assert view[1][1] == message_html("assistant", history[2]["content"])
    assert widget.input.value == ""
    assert not widget.busy
    assert not widget.send_button.disabled and widget.stop_button.disabled
    assert "chatkit-error" not in widget.status.value


def test_a_second_message_continues_the_chat(widget, embedded):
    model, tokenizer = embedded
    press_enter(widget, "Hi!")
    widget.wait(60)
    press_enter(widget, "And then?")
    widget.wait(60)
    history = widget.history
    assert [m["role"] for m in history] == ["system", "user", "assistant", "user", "assistant"]
    assert history[-1]["content"] == reply(model, tokenizer, history[:-1], max_new_tokens=MAX_NEW_TOKENS)
    assert len(widget.view.children) == 4


def test_send_button_sends_the_typed_text_and_ignores_an_empty_box(widget):
    widget.send_button.click()
    assert widget.history == [{"role": "system", "content": chat_widgets.DEFAULT_SYSTEM_PROMPT}]
    assert widget.view.children == ()
    type_only(widget, "What is a token?")
    assert len(widget.history) == 1  # typing alone sends nothing
    widget.send_button.click()
    widget.wait(60)
    assert [m["role"] for m in widget.history] == ["system", "user", "assistant"]
    assert widget.history[1]["content"] == "What is a token?"


def test_reply_streams_chunk_by_chunk_while_send_returns_at_once(widget, monkeypatch):
    stream = ScriptedStream(["Hel", "lo", " <b>world</b>"])
    monkeypatch.setattr(chat_widgets, "stream_reply", stream)
    assert widget.send("Hi") is True
    assert widget.busy and widget.send_button.disabled and not widget.stop_button.disabled
    reply_view = widget.view.children[-1]
    seen = []
    reply_view.observe(lambda change: seen.append(change["new"]), names="value")
    stream.let_through()
    wait_until(lambda: seen)
    assert "Hel" in seen[-1] and "chatkit-cursor" in seen[-1]
    assert widget.history[-1] == {"role": "user", "content": "Hi"}  # the reply joins when it is done
    stream.let_through(2)
    assert widget.wait(10)
    assert widget.history[-1] == {"role": "assistant", "content": "Hello <b>world</b>"}
    assert reply_view.value == message_html("assistant", "Hello <b>world</b>")
    assert "&lt;b&gt;world&lt;/b&gt;" in reply_view.value and "<b>world" not in reply_view.value
    assert len(seen) >= 3  # one view update per chunk, then the final one without the cursor


def test_settings_reach_the_stream(widget, monkeypatch):
    stream = ScriptedStream(["ok"])
    monkeypatch.setattr(chat_widgets, "stream_reply", stream)
    widget.max_new_tokens.value = 7
    widget.decoding.value = "sample"
    assert not widget.temperature.disabled
    widget.temperature.value = 0.5
    widget.send("Hi")
    stream.let_through()
    widget.wait(10)
    assert stream.settings[-1] == {"max_new_tokens": 7, "do_sample": True, "temperature": 0.5, "enable_thinking": False}
    widget.decoding.value = "greedy"
    assert widget.temperature.disabled
    assert widget.settings == {"max_new_tokens": 7, "do_sample": False}


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"temperature": -0.5}, "temperature must be 0 or more"),
        ({"max_new_tokens": 0}, "max_new_tokens must be a positive"),
        ({"max_new_tokens": 10**6}, "more than this widget offers"),
        ({"system_prompt": 42}, "system_prompt must be a string"),
    ],
)
def test_impossible_settings_are_refused_up_front(embedded, settings, message):
    model, tokenizer = embedded
    with pytest.raises(ValueError, match=message):
        ChatWidget(model, tokenizer, **settings)


def test_constructor_settings_fill_the_controls(embedded):
    model, tokenizer = embedded
    widget = ChatWidget(model, tokenizer, system_prompt=None, max_new_tokens=33, temperature=3.0)
    assert widget.system_prompt.value == "" and widget.history == []
    assert widget.max_new_tokens.value == 33
    assert widget.decoding.value == "sample" and widget.temperature.value == 3.0
    assert widget.settings == {"max_new_tokens": 33, "do_sample": True, "temperature": 3.0}


def test_stop_keeps_the_text_so_far(widget, monkeypatch):
    stream = ScriptedStream(["Once", " upon", " a", " time"])
    monkeypatch.setattr(chat_widgets, "stream_reply", stream)
    widget.send("Tell me a story")
    stream.let_through()
    wait_until(lambda: "Once" in widget.view.children[-1].value)
    widget.stop_button.click()
    assert widget.wait(10)
    assert widget.history[-1] == {"role": "assistant", "content": "Once"}
    assert "Stopped." in widget.status.value
    assert not widget.send_button.disabled and widget.stop_button.disabled


def test_stop_ends_real_generation(embedded):
    model, tokenizer = embedded
    widget = ChatWidget(model, tokenizer, max_new_tokens=64)
    widget.send("Hi")
    widget.stop()
    assert widget.wait(30)
    assert "Stopped." in widget.status.value
    history = widget.history
    assert history[-1]["role"] == "assistant"
    full = reply(model, tokenizer, history[:-1], max_new_tokens=64)
    assert full.startswith(history[-1]["content"])  # the text so far, cut where Stop landed


def test_enter_while_a_reply_streams_keeps_the_text_and_says_why(widget, monkeypatch):
    stream = ScriptedStream(["a", "b"])
    monkeypatch.setattr(chat_widgets, "stream_reply", stream)
    widget.send("first")
    press_enter(widget, "second")
    assert widget.input.value == "second"
    assert "still streaming" in widget.status.value
    stream.let_through(2)
    widget.wait(10)
    assert [m["content"] for m in widget.history if m["role"] == "user"] == ["first"]


def test_reset_clears_the_conversation_and_drops_a_streaming_reply(widget, monkeypatch):
    stream = ScriptedStream(["never", " shown"])
    monkeypatch.setattr(chat_widgets, "stream_reply", stream)
    widget.system_prompt.value = "You are a pirate."
    widget.send("Ahoy")
    widget.reset_button.click()
    assert not widget.busy
    assert widget.history == [{"role": "system", "content": "You are a pirate."}]
    assert widget.view.children == ()
    stream.let_through(2)
    time.sleep(0.05)
    assert widget.history == [{"role": "system", "content": "You are a pirate."}]
    assert widget.view.children == ()


def test_history_is_settable_and_round_trips(widget, monkeypatch):
    chat = [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris <3"},
    ]
    widget.history = chat
    assert widget.history == chat
    assert widget.history is not chat
    assert widget.system_prompt.value == "Be terse."
    view = messages_in_view(widget)
    assert [classes[1] for classes, _ in view] == ["chatkit-user", "chatkit-assistant"]
    assert "Paris &lt;3" in view[1][1]
    # Changing the returned list changes nothing inside the widget.
    widget.history[1]["content"] = "changed"
    assert widget.history == chat
    # The next message continues the chat that was set.
    stream = ScriptedStream(["Rome."])
    monkeypatch.setattr(chat_widgets, "stream_reply", stream)
    widget.send("And Italy?")
    stream.let_through()
    widget.wait(10)
    assert stream.chats[-1] == chat + [{"role": "user", "content": "And Italy?"}]
    # Without a system message the field is cleared; [] clears everything.
    widget.history = [{"role": "user", "content": "Hi"}]
    assert widget.history == [{"role": "user", "content": "Hi"}]
    assert widget.system_prompt.value == ""
    widget.history = []
    assert widget.history == [] and widget.view.children == ()


def test_a_bad_history_is_rejected_and_shown_in_the_widget(widget):
    before = widget.history
    with pytest.raises(ValueError, match="message 1"):
        widget.history = [{"role": "user", "content": "Hi"}, {"role": "bot", "content": "Hello"}]
    assert widget.history == before
    assert "chatkit-error" in widget.status.value and "message 1" in widget.status.value


def test_a_failed_generation_is_shown_and_the_widget_still_works(widget, monkeypatch):
    stream = ScriptedStream(["partial", "never"], fail_after=1)
    monkeypatch.setattr(chat_widgets, "stream_reply", stream)
    press_enter(widget, "Hello?")
    stream.let_through(2)
    assert widget.wait(10)
    assert "chatkit-error" in widget.status.value
    assert "RuntimeError" in widget.status.value and "out of memory" in widget.status.value
    assert widget.history == [{"role": "system", "content": chat_widgets.DEFAULT_SYSTEM_PROMPT}]
    assert widget.view.children == ()
    assert widget.input.value == "Hello?"  # back in the box, ready to send again
    assert not widget.busy and not widget.send_button.disabled
    retry = ScriptedStream(["Hi!"])
    monkeypatch.setattr(chat_widgets, "stream_reply", retry)
    widget.send_button.click()
    retry.let_through()
    widget.wait(10)
    assert widget.history[-1] == {"role": "assistant", "content": "Hi!"}
    assert "chatkit-error" not in widget.status.value


def with_template_prefix(tokenizer, prefix):
    strict = copy.deepcopy(tokenizer)
    strict.chat_template = prefix + tokenizer.chat_template
    return strict


def test_a_template_that_rejects_every_chat_shows_its_error(embedded):
    model, tokenizer = embedded
    broken = with_template_prefix(tokenizer, "{{ raise_exception('This template takes no chats') }}")
    widget = ChatWidget(model, broken, max_new_tokens=MAX_NEW_TOKENS)
    widget.send("Hi")
    assert widget.wait(30)
    assert "chatkit-error" in widget.status.value and "This template takes no chats" in widget.status.value
    assert len(widget.history) == 1 and widget.input.value == "Hi"


def test_a_rejected_system_message_is_folded_into_the_first_user_message(embedded, monkeypatch):
    model, tokenizer = embedded
    no_system = with_template_prefix(
        tokenizer,
        "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}",
    )
    stream = ScriptedStream(["Arr!"])
    monkeypatch.setattr(chat_widgets, "stream_reply", stream)
    widget = ChatWidget(model, no_system, system_prompt="You are a pirate.")
    widget.send("Hi")
    stream.let_through()
    assert widget.wait(10)
    assert stream.chats[-1] == [{"role": "user", "content": "You are a pirate.\n\nHi"}]
    assert widget.history == [
        {"role": "system", "content": "You are a pirate."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Arr!"},
    ]
    assert "folded" in widget.status.value and "chatkit-error" not in widget.status.value


def test_a_long_chat_is_cut_to_the_context_window_for_the_model_only(widget, embedded, monkeypatch):
    model, tokenizer = embedded
    context = model.config.max_position_embeddings
    long_turns = []
    for index in range(12):
        long_turns += [
            {"role": "user", "content": f"question {index}: " + "tell me more " * 10},
            {"role": "assistant", "content": f"answer {index}: " + "here is more " * 10},
        ]
    widget.history = [{"role": "system", "content": "Be terse."}] + long_turns
    assert chatkit.count_prompt_tokens(widget.history + [{"role": "user", "content": "Last one"}], tokenizer) > context
    stream = ScriptedStream(["ok"])
    monkeypatch.setattr(chat_widgets, "stream_reply", stream)
    widget.send("Last one")
    stream.let_through()
    assert widget.wait(10)
    seen = stream.chats[-1]
    assert seen[0] == {"role": "system", "content": "Be terse."} and seen[-1]["content"] == "Last one"
    assert len(seen) < len(widget.history) - 1
    assert chatkit.count_prompt_tokens(seen, tokenizer) + MAX_NEW_TOKENS <= context
    assert "oldest messages were left out" in widget.status.value
    assert len(widget.history) == 1 + len(long_turns) + 2  # the widget's history keeps everything


def test_max_new_tokens_beyond_the_context_is_an_error_in_the_widget(widget, embedded):
    model, _ = embedded
    widget.max_new_tokens.value = model.config.max_position_embeddings + 10
    widget.send("Hi")
    assert widget.wait(30)
    assert "chatkit-error" in widget.status.value and "max_new_tokens" in widget.status.value
    assert not widget.busy


def test_message_html_escapes_and_marks_empty_replies():
    html = message_html("user", '<script>alert("x")</script>')
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "(empty reply)" in message_html("assistant", "")
    assert "(empty reply)" not in message_html("assistant", "", streaming=True)


def test_display_shows_the_widget_with_a_stable_text_form(widget):
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.display import display
    from IPython.utils.capture import capture_output

    InteractiveShell.instance()
    with capture_output() as captured:
        display(widget)  # what ending a cell with the widget does
    bundle = captured.outputs[0].data
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == widget.ui.model_id
    assert bundle["text/plain"] == "ChatWidget(chatkit's embedded model (offline), 1 message)"
    assert "chatkit-chat" in widget.ui._dom_classes


def test_chat_widget_loads_the_default_model_offline():
    widget = chatkit.chat_widget(system_prompt="", max_new_tokens=4)
    assert widget.model.name_or_path == chatkit.embedded_model_path()
    assert widget.history == [] and widget.max_new_tokens.value == 4


def test_display_with_ipywidgets_7_sends_the_same_bundle(widget, monkeypatch):
    shown = []

    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    class Version7Box:  # ipywidgets 7 widgets have no _repr_mimebundle_; display runs on_displayed callbacks
        model_id = "abc"

        def _handle_displayed(self):
            shown.append(True)

    monkeypatch.setattr(widget, "ui", Version7Box())
    InteractiveShell.instance()
    with capture_output() as captured:
        widget._ipython_display_()
    data = captured.outputs[0].data
    transcript = data.pop("text/html")  # what GitHub shows in place of the live widget
    assert data == {
        "text/plain": repr(widget),
        chat_widgets.WIDGET_VIEW: {"version_major": 2, "version_minor": 0, "model_id": "abc"},
    }
    assert all(chat_widgets.message_html(m["role"], m["content"]) in transcript for m in widget.history)
    assert shown == [True]


def test_on_colab_the_reply_streams_from_the_callers_thread(embedded, monkeypatch):
    import sys

    model, tokenizer = embedded
    monkeypatch.setitem(sys.modules, "google.colab", type(sys)("google.colab"))
    on_colab = ChatWidget(model, tokenizer, max_new_tokens=MAX_NEW_TOKENS)
    assert on_colab.background is False
    press_enter(on_colab, "Hi!")  # returns when the reply is complete: no thread to wait for
    assert not on_colab.busy
    assert [m["role"] for m in on_colab.history] == ["system", "user", "assistant"]
    assert on_colab.history[-1]["content"] == reply(
        model, tokenizer, on_colab.history[:-1], max_new_tokens=MAX_NEW_TOKENS
    )
    assert ChatWidget(model, tokenizer, background=True).background is True


def test_enter_on_text_already_in_the_box_sends_it(widget):
    type_only(widget, "What is a token?")  # typed, then the box lost focus: nothing sent
    assert len(widget.history) == 1
    widget.input._handle_string_msg(None, {"event": "submit"}, None)  # Enter; the value does not change
    deadline = time.monotonic() + 5
    while len(widget.history) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    widget.wait(60)
    assert [m["role"] for m in widget.history] == ["system", "user", "assistant"]
    assert widget.history[1]["content"] == "What is a token?"


def test_tools_show_the_call_and_its_result_then_the_answer(embedded, monkeypatch):
    from chatkit.tools import multiply

    model, tokenizer = embedded
    replies = iter(
        [['<tool_call>{"name": "multiply", ', '"arguments": {"a": 12, "b": 7}}</tool_call>'], ["12 times 7 ", "is 84."]]
    )
    asked = []

    def scripted(model, tokenizer, chat, stop_event=None, tools=None, **settings):
        asked.append((copy.deepcopy(chat), tools))
        yield from next(replies)

    monkeypatch.setattr(chat_widgets, "stream_reply", scripted)
    widget = ChatWidget(model, tokenizer, system_prompt="", tools=[multiply])
    assert widget.send("What is 12 times 7?") and widget.wait(10)
    call = {"type": "function", "function": {"name": "multiply", "arguments": {"a": 12, "b": 7}}}
    assert widget.history == [
        {"role": "user", "content": "What is 12 times 7?"},
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "content": "84", "name": "multiply"},
        {"role": "assistant", "content": "12 times 7 is 84."},
    ]
    assert [tools for _, tools in asked] == [[multiply], [multiply]] and asked[1][0] == widget.history[:3]
    view = [child.value for child in widget.view.children]
    assert "multiply(a=12, b=7)" in view[1] and "84" in view[2] and "12 times 7 is 84." in view[3]
    widget.history = widget.history  # a history with tool calls renders and round-trips
    assert len(widget.view.children) == 4


# ------------------------------------------------------------------ hostile input: refused, and nothing is lost
CHAT = [
    {"role": "system", "content": "Be terse."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello."},
]


def test_a_system_message_of_text_blocks_fills_the_system_field(widget):
    widget.history = CHAT
    widget.history = [
        {"role": "system", "content": [{"type": "text", "text": "You are "}, {"type": "text", "text": "a pirate."}]},
        CHAT[1],
    ]
    assert widget.history == [{"role": "system", "content": "You are a pirate."}, CHAT[1]]


def test_a_history_the_system_field_cannot_hold_is_refused_before_anything_changes(widget):
    widget.history = CHAT
    image_system = [{"role": "system", "content": [{"type": "image", "url": "cat.png"}]}, CHAT[1]]
    with pytest.raises(
        ValueError,
        match="the system message has image blocks, but a system prompt is text only; write the system message as text",
    ):
        widget.history = image_system
    assert widget.history == CHAT and len(widget.view.children) == 2  # the conversation is still there
    assert "history not changed" in widget.status.value


def test_send_refuses_what_is_not_text_and_keeps_the_conversation(widget):
    widget.history = CHAT
    with pytest.raises(TypeError, match=r'send\(\) takes the message as a string, got int; write widget.send\("Hi!"\)'):
        widget.send(123)
    assert widget.send("Hi \ud800") is False  # a lone surrogate: refused by validate_chat, in the status line
    assert "lone surrogate" in widget.status.value and "chatkit-error" in widget.status.value
    assert widget.history == CHAT and not widget.busy


def test_tools_without_proper_names_are_refused_when_the_widget_is_made(embedded):
    model, tokenizer = embedded
    with pytest.raises(ValueError, match="has no name the model can call"):
        ChatWidget(model, tokenizer, tools=[lambda a: a, lambda b: b])


CALL_TEXT = '<tool_call>{"name": "multiply", "arguments": {"a": 12, "b": 7}}</tool_call>'


def test_when_the_tool_calls_run_out_the_status_says_so_and_every_call_shows_once(embedded, monkeypatch):
    from chatkit.tools import MAX_TOOL_CALLS, multiply

    model, tokenizer = embedded

    def always_calls(model, tokenizer, chat, stop_event=None, tools=None, **settings):
        yield CALL_TEXT

    monkeypatch.setattr(chat_widgets, "stream_reply", always_calls)
    widget = ChatWidget(model, tokenizer, system_prompt="", tools=[multiply])
    assert widget.send("What is 12 times 7?") and widget.wait(10)
    history = widget.history
    assert [m["role"] for m in history] == ["user"] + ["assistant", "tool"] * MAX_TOOL_CALLS + ["assistant"]
    assert history[-1]["tool_calls"][0]["function"]["name"] == "multiply"  # the last call, kept unanswered
    assert f"The limit of {MAX_TOOL_CALLS} tool calls was reached" in widget.status.value
    view = [child.value for child in widget.view.children]
    assert len(view) == len(history) and all("chatkit-cursor" not in html for html in view)
    assert sum("multiply(a=12, b=7)" in html for html in view) == MAX_TOOL_CALLS + 1
    widget.history = widget.history  # the kept conversation is a valid chat


def test_stop_during_a_reply_that_calls_a_tool_runs_no_tool(embedded, monkeypatch):
    model, tokenizer = embedded
    ran = []

    def record(a: int, b: int) -> int:
        """Multiply, and remember the call.

        Args:
            a: The first number.
            b: The second number.
        """
        ran.append((a, b))
        return a * b

    def call_then_stop(model, tokenizer, chat, stop_event=None, tools=None, **settings):
        yield CALL_TEXT.replace("multiply", "record")
        stop_event.set()  # the reader pressed Stop as the call was written

    monkeypatch.setattr(chat_widgets, "stream_reply", call_then_stop)
    widget = ChatWidget(model, tokenizer, system_prompt="", tools=[record])
    assert widget.send("What is 12 times 7?") and widget.wait(10)
    assert ran == [] and [m["role"] for m in widget.history] == ["user", "assistant"]
    assert "Stopped." in widget.status.value


def test_stop_while_a_tool_runs_keeps_the_call_and_its_result_and_asks_no_more(embedded, monkeypatch):
    model, tokenizer = embedded
    replies = []

    def slow_tool(a: int, b: int) -> int:
        """Multiply slowly: the reader presses Stop meanwhile.

        Args:
            a: The first number.
            b: The second number.
        """
        widget.stop()
        return a * b

    def calls(model, tokenizer, chat, stop_event=None, tools=None, **settings):
        replies.append(chat)
        yield CALL_TEXT.replace("multiply", "slow_tool")

    monkeypatch.setattr(chat_widgets, "stream_reply", calls)
    widget = ChatWidget(model, tokenizer, system_prompt="", tools=[slow_tool])
    assert widget.send("What is 12 times 7?") and widget.wait(10)
    assert len(replies) == 1 and [m["role"] for m in widget.history] == ["user", "assistant", "tool"]
    assert widget.history[-1]["content"] == "84" and "Stopped." in widget.status.value
    assert len(widget.view.children) == 3


# ------------------------------------------------------------------ the think switch (hand-written thoughts:
# the shipped weights do not think yet)
THOUGHT = "12 + 30: the tens make 40, the units 2."
ANSWER = "12 + 30 = 42."


def test_the_think_switch_sits_in_the_settings_row_and_starts_as_asked(embedded):
    model, tokenizer = embedded
    widget = ChatWidget(model, tokenizer)
    assert widget.thinking.value is False and widget.thinking.description == "think"
    assert widget.thinking in widget.ui.children[1].children and "chatkit-thinking" in widget.thinking._dom_classes
    assert ChatWidget(model, tokenizer, thinking=True).thinking.value is True
    with pytest.raises(ValueError, match="thinking must be True or False"):
        ChatWidget(model, tokenizer, thinking="yes")


def test_with_thinking_on_the_prompt_opens_a_thought_and_the_reply_is_split(embedded):
    _, tokenizer = embedded
    scripted = ScriptedModel(tokenizer, f"{THOUGHT}\n</think>\n\n{ANSWER}", "Italy: Rome.\n</think>\n\nRome.", "Bye!")
    widget = ChatWidget(scripted, tokenizer, system_prompt="", thinking=True)
    assert widget.send("What is 12 + 30?") and widget.wait(30)
    assert scripted.prompts[-1].endswith("<|im_start|>assistant\n<think>\n")
    assert widget.history[-1] == {"role": "assistant", "content": ANSWER, "thinking": THOUGHT}
    assert widget.view.children[-1].value == message_html("assistant", ANSWER, thought=THOUGHT)
    # the next prompt leaves the earlier thought out (the template drops it), the history keeps it
    assert widget.send("And the capital of Italy?") and widget.wait(30)
    assert THOUGHT not in scripted.prompts[-1] and ANSWER in scripted.prompts[-1]
    assert widget.history[1]["thinking"] == THOUGHT
    assert widget.history[-1] == {"role": "assistant", "content": "Rome.", "thinking": "Italy: Rome."}
    # off: the prompt is what it always was, and nothing is taken for a thought
    widget.thinking.value = False
    assert widget.send("Thanks!") and widget.wait(30)
    assert scripted.prompts[-1].endswith("<|im_start|>assistant\n")
    assert widget.history[-1] == {"role": "assistant", "content": "Bye!"}


def test_a_thought_streams_folded_above_the_answer_even_when_the_tag_is_cut(widget, monkeypatch):
    stream = ScriptedStream(["12 + 30: <b>the", " tens</b> make 40.\n</th", "ink>\n\n12 + 30", " = 42."])
    monkeypatch.setattr(chat_widgets, "stream_reply", stream)
    widget.thinking.value = True
    widget.send("What is 12 + 30?")
    reply_view = widget.view.children[-1]
    thought = "12 + 30: <b>the tens</b> make 40."
    for thought_so_far, answer_so_far in [
        ("12 + 30: <b>the", ""),
        (thought + "\n</th", ""),  # not closed yet: still the thought, folded
        (thought, "12 + 30"),
    ]:
        stream.let_through()
        expected = message_html("assistant", answer_so_far, streaming=True, thought=thought_so_far)
        wait_until(lambda: reply_view.value == expected)  # read before the next chunk comes
    stream.let_through()
    assert widget.wait(10)
    assert stream.settings[-1]["enable_thinking"] is True
    assert widget.history[-1] == {"role": "assistant", "content": ANSWER, "thinking": thought}
    assert reply_view.value == message_html("assistant", ANSWER, thought=thought)
    assert '<details class="chatkit-thought"><summary>Thought (7 words)</summary>' in reply_view.value
    assert "&lt;b&gt;the tens&lt;/b&gt;" in reply_view.value and "<b>" not in reply_view.value  # escaped


def test_stop_mid_thought_keeps_the_thought_so_far_and_an_empty_answer(widget, monkeypatch):
    stream = ScriptedStream(["Let me add", " the tens"])
    monkeypatch.setattr(chat_widgets, "stream_reply", stream)
    widget.thinking.value = True
    widget.send("What is 12 + 30?")
    stream.let_through()
    wait_until(lambda: "Let me add" in widget.view.children[-1].value)
    widget.stop_button.click()
    assert widget.wait(10)
    assert widget.history[-1] == {"role": "assistant", "content": "", "thinking": "Let me add"}
    assert "Stopped." in widget.status.value and "(empty reply)" in widget.view.children[-1].value


def test_an_empty_thought_or_a_model_that_does_not_think_leaves_no_thinking_key(widget, monkeypatch):
    widget.thinking.value = True
    for chunks in (["\n</think>\n\n", "Hi!"], ["Hi!"]):  # the embedded template opens the thought
        monkeypatch.setattr(chat_widgets, "stream_reply", ScriptedStream(chunks))
        chat_widgets.stream_reply.let_through(len(chunks))
        widget.send("Hello")
        assert widget.wait(10)
    assert widget.history[2] == {"role": "assistant", "content": "Hi!"}
    assert widget.history[4] == {"role": "assistant", "content": "", "thinking": "Hi!"}  # never closed: thought


def test_a_history_with_thoughts_round_trips_and_shows_them_folded(widget, monkeypatch):
    chat = [
        {"role": "user", "content": "What is 12 + 30?"},
        {"role": "assistant", "content": "42", "thinking": "Add <the> tens."},
        {"role": "user", "content": "And in Qwen3's words?"},
        {"role": "assistant", "content": "Forty-two.", "reasoning_content": "Say it in words."},
    ]
    widget.history = chat
    assert widget.history == chat
    view = messages_in_view(widget)
    assert "<summary>Thought (3 words)</summary>" in view[1][1] and "Add &lt;the&gt; tens." in view[1][1]
    assert "Say it in words." in view[3][1] and "<details" not in view[0][1]
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    InteractiveShell.instance()
    with capture_output() as captured:
        widget._ipython_display_()
    transcript = captured.outputs[0].data["text/html"]  # what GitHub shows in place of the live widget
    assert message_html("assistant", "42", thought="Add <the> tens.") in transcript
    with pytest.raises(ValueError, match="message 1: 'thinking' must be a string"):
        widget.history = [chat[0], {"role": "assistant", "content": "42", "thinking": ["Add."]}]
    assert widget.history == chat


def test_with_tools_a_thought_stays_with_its_reply_and_calls_in_it_are_not_run(embedded, monkeypatch):
    from chatkit.tools import multiply

    model, tokenizer = embedded
    replies = iter(
        [
            ["I could call <tool_call>{}</tool_call> wrongly", "; no.\n</think>\n\n" + CALL_TEXT],
            ["It returned 84.\n</think>\n\n", "12 times 7 is 84."],
        ]
    )
    asked = []

    def scripted(model, tokenizer, chat, stop_event=None, tools=None, **settings):
        asked.append((copy.deepcopy(chat), settings))
        yield from next(replies)

    monkeypatch.setattr(chat_widgets, "stream_reply", scripted)
    widget = ChatWidget(model, tokenizer, system_prompt="", tools=[multiply], thinking=True)
    assert widget.send("What is 12 times 7?") and widget.wait(10)
    call = {"type": "function", "function": {"name": "multiply", "arguments": {"a": 12, "b": 7}}}
    first = {
        "role": "assistant",
        "tool_calls": [call],
        "thinking": "I could call <tool_call>{}</tool_call> wrongly; no.",
    }
    assert widget.history == [
        {"role": "user", "content": "What is 12 times 7?"},
        first,
        {"role": "tool", "content": "84", "name": "multiply"},
        {"role": "assistant", "content": "12 times 7 is 84.", "thinking": "It returned 84."},
    ]
    assert asked[1][0][1] == first  # this turn's thought goes back to the model with its call
    assert all(settings["enable_thinking"] is True for _, settings in asked)
    assert "Thought (" in widget.view.children[1].value and "multiply(a=12, b=7)" in widget.view.children[1].value


# ----------------------------------------------------------------------------- pictures (a model that sees)


@pytest.fixture(scope="session")
def seeing():
    from transformers import AutoModelForImageTextToText, AutoProcessor

    path = chatkit.embedded_vision_path()
    return AutoModelForImageTextToText.from_pretrained(path), AutoProcessor.from_pretrained(path)


def drawn_picture(seed=0):
    import random

    from chatkit import pictures

    return pictures.draw(pictures.random_scene(random.Random(seed), "one"))


def png_bytes(image):
    import io

    png = io.BytesIO()
    image.save(png, format="PNG")
    return png.getvalue()


def upload(widget, content, name="shape.png"):
    """What the browser sends when the reader picks a file (through ipywidgets' own deserializers): on
    ipywidgets 8 the value, a list of files; on 7 the files' metadata and bytes, then a higher counter."""
    file = {"name": name, "type": "image/png", "size": len(content), "last_modified": 0}
    if isinstance(widget.picture.value, dict):  # ipywidgets 7
        counter = widget.picture._counter + 1
        widget.picture.set_state({"metadata": [file], "data": [memoryview(content)], "_counter": counter})
    else:
        widget.picture.set_state({"value": [dict(file, content=memoryview(content))]})


def greedy_by_hand(seeing, chat):
    model, processor = seeing
    inputs = processor.apply_chat_template(
        chat, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    out = model.generate(**inputs, max_new_tokens=MAX_NEW_TOKENS, do_sample=False)
    return processor.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)


def test_an_uploaded_picture_goes_with_the_message_shows_in_the_transcript_and_stays_in_the_chat(seeing):
    model, processor = seeing
    widget = ChatWidget(model, processor, system_prompt="", max_new_tokens=MAX_NEW_TOKENS)
    picture = drawn_picture()
    upload(widget, png_bytes(picture))
    press_enter(widget, "What colour is it?")
    assert widget.wait(60) and "chatkit-error" not in widget.status.value
    first = widget.history
    (image_block, text_block) = first[0]["content"]
    assert image_block["type"] == "image" and image_block["image"].tobytes() == picture.tobytes()
    assert text_block == {"type": "text", "text": "What colour is it?"}
    assert first[1]["content"] == greedy_by_hand(seeing, first[:1])
    assert not widget.picture.value  # emptied once the reply was in
    user_view = messages_in_view(widget)[0][1]
    assert 'class="chatkit-picture"' in user_view and "What colour is it?" in user_view
    press_enter(widget, "And is it big or small?")  # a follow-up: the picture stays in the chat
    assert widget.wait(60)
    history = widget.history
    assert history[:2] == first and history[2] == {"role": "user", "content": "And is it big or small?"}
    assert history[3]["content"] == greedy_by_hand(seeing, history[:3])


def test_send_takes_a_picture_from_code_and_the_text_form_shows_it(seeing):
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    model, processor = seeing
    widget = ChatWidget(model, processor, system_prompt="", max_new_tokens=MAX_NEW_TOKENS)
    assert widget.send("What shape is it?", picture=drawn_picture(1)) and widget.wait(60)
    assert widget.history[1]["content"] == greedy_by_hand(seeing, widget.history[:1])
    InteractiveShell.instance()
    with capture_output() as captured:
        widget._ipython_display_()
    assert captured.outputs[0].data["text/html"].count('class="chatkit-picture"') == 1


def test_a_file_that_is_not_a_picture_is_refused_and_nothing_is_lost(seeing):
    model, processor = seeing
    widget = ChatWidget(model, processor, system_prompt="", max_new_tokens=MAX_NEW_TOKENS)
    upload(widget, b"%PDF-1.7 not a picture", name="notes.pdf")
    type_only(widget, "What is in it?")
    assert widget.send() is False
    assert "notes.pdf is not a picture" in widget.status.value and "chatkit-error" in widget.status.value
    assert widget.input.value == "What is in it?" and widget.history == [] and widget.picture.value
    widget.reset()
    assert not widget.picture.value


def test_a_failed_reply_keeps_the_uploaded_picture_and_the_text(seeing, monkeypatch):
    model, processor = seeing
    widget = ChatWidget(model, processor, system_prompt="", max_new_tokens=MAX_NEW_TOKENS)
    stream = ScriptedStream(["It "], fail_after=0)
    monkeypatch.setattr(chat_widgets, "stream_reply", stream)
    upload(widget, png_bytes(drawn_picture()))
    press_enter(widget, "What colour is it?")
    stream.let_through()
    assert widget.wait(10)
    assert widget.history == [] and widget.input.value == "What colour is it?" and widget.picture.value
    assert "Your message is back in the input box" in widget.status.value


def test_chat_widget_gives_a_vision_language_model_its_processor():
    widget = chatkit.chat_widget(chatkit.embedded_vision_path(), system_prompt="", max_new_tokens=MAX_NEW_TOKENS)
    assert widget.picture is not None and widget.processor is not None
    assert widget.send("What colour is it?", picture=drawn_picture()) and widget.wait(60)
    assert widget.history[-1]["role"] == "assistant" and "chatkit-error" not in widget.status.value


def test_a_model_that_cannot_see_has_no_upload_and_refuses_a_picture(widget):
    assert widget.picture is None
    assert widget.send("What is it?", picture=drawn_picture()) is False
    assert "this model cannot see pictures" in widget.status.value and widget.history[1:] == []


def test_a_processor_whose_tokenizer_has_no_chat_template_still_chats(seeing):
    model, processor = seeing
    bare = copy.deepcopy(processor)  # as SmolVLM ships: the template lives in the processor only
    bare.tokenizer.chat_template = None
    widget = ChatWidget(model, bare, system_prompt="", max_new_tokens=MAX_NEW_TOKENS)
    assert widget.send("What colour is it?", picture=drawn_picture(2)) and widget.wait(60)
    assert "chatkit-error" not in widget.status.value
    assert widget.history[1]["content"] == greedy_by_hand(seeing, widget.history[:1])


def test_a_large_photo_is_shrunk_in_the_transcript_not_in_the_chat():
    from PIL import Image

    photo = Image.new("RGB", (4000, 3000), "orange")
    html = chat_widgets.message_html("user", "What is this?", pictures=[photo])
    assert 'class="chatkit-picture"' in html and len(html) < 20_000
    assert photo.size == (4000, 3000)
