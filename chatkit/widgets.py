"""A chat widget for notebooks: talk to a model with replies streaming in, token by token.

`ChatWidget(model, tokenizer)` is an ipywidgets user interface around `generation.stream_reply`:
a conversation view, an input box (Enter sends), Send / Stop / Reset buttons, a system-prompt field and
generation settings. Its `history` is the same list of `{"role", "content"}` dicts that
`pipeline("text-generation")` takes, readable and settable from code. Errors show inside the widget.

The "think" switch (`thinking=True`) passes `enable_thinking=True` to the chat template: the thought, split
from the answer as it streams (`generation.split_thought`), shows folded above the reply; `history` keeps it
as the message's `thinking`, which the template leaves out of later prompts.

A vision-language model sees: `ChatWidget(model, processor)` adds a "Picture" upload; the next message
carries the picture as an image block, shown in the transcript (`send(text, picture=image)` from code).

The reply is generated in a background thread (the notebook stays usable, Stop works mid-reply),
except on Google Colab, whose front end does not show widget updates sent from a background thread
(googlecolab/colabtools issue 3373): there it streams from the thread that handles the click or the
Enter key, so each chunk reaches the page as it is written. `background=True/False` overrides it.
It works with ipywidgets 8 and 7 (Colab's).

What it simplifies: one conversation at a time, replies as plain text (no Markdown rendering).

Example:
    >>> import chatkit
    >>> chat = chat_widget(chatkit.embedded_model_path(), system_prompt="")   # end a cell with it to show it
    >>> chat.send("Hi!"), chat.wait(timeout=60)
    (True, True)
    >>> chat.history
    [{'role': 'user', 'content': 'Hi!'}, {'role': 'assistant', 'content': 'Hello! How can I help you today?'}]
"""

import threading

from . import chat_window
from .chat import message_pictures, message_text, message_thought, split_system_prompt, validate_chat
from .chat_view import message_html, status_html
from .generation import generation_settings, split_thought, stream_reply
from .hub import default_model, describe_model
from .loading import load_model
from .machine import on_colab
from .quiz import WIDGET_VIEW, display_widget  # noqa: F401 (WIDGET_VIEW kept importable from here)
from .templating import apply_template_with_fallback, fit_to_context, fold_system_message
from .tools import MAX_TOOL_CALLS, ToolLoopError, functions_by_name, tool_loop

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."
MAX_NEW_TOKENS_LIMIT = 32768  # the largest value the max-new-tokens box accepts


class _Job:
    """One reply being generated: the event that stops it and the one set when it has ended."""

    def __init__(self, thinking=False):
        self.stop_event = threading.Event()
        self.done = threading.Event()
        self.cancelled = False  # set by reset / a new history: the job's result is thrown away
        self.notes = []  # what was adapted in the chat the model saw, for the status line
        self.thinking = thinking  # generate with the template's thinking switch on
        self.opened = False  # the prompt ends in <think>: the reply starts inside a thought
        self.uploaded = False  # its message's picture came from the upload (emptied when the reply is in)


class ChatWidget:
    """A chat with `model` in a notebook; display it as the last line of a cell.

    Args:
        model, tokenizer: a causal LM and its tokenizer, e.g. from `chatkit.load_model`; or a
            vision-language model and its processor (`AutoProcessor`): the window then takes pictures.
        system_prompt: the text of the system message ("" for none).
        max_new_tokens: the longest reply, in tokens.
        temperature: 0 for greedy decoding (same chat, same reply), above 0 to sample.
        history: a chat to start from (list of {"role", "content"} dicts).
        background: generate in a background thread (default: everywhere but on Colab, see above).
        tools: Python functions the model may call (`chatkit.tools`): calls and results show as
            messages, and the model answers after reading them.
        thinking: start with the "think" switch on (a thinking model thinks before it answers).

    The input box sends on Enter only: clicking elsewhere keeps a half-typed message in the box. While a
    reply streams, `history` ends with the user's message; the reply is added when it finishes or is
    stopped. A failed generation removes the user's message and puts its text back in the input box.

    What the model sees is the history, adapted when it must be (the widget says so): a system
    message that the chat template rejects is folded into the first user message, and when the chat
    outgrows the model's context window the oldest turns are left out. `history` keeps everything.
    """

    def __init__(
        self,
        model,
        tokenizer,
        system_prompt=DEFAULT_SYSTEM_PROMPT,
        max_new_tokens=256,
        temperature=0.0,
        history=None,
        background=None,
        tools=None,
        thinking=False,
    ):
        generation_settings(max_new_tokens=max_new_tokens, temperature=temperature)  # ValueError if impossible
        if max_new_tokens > MAX_NEW_TOKENS_LIMIT:
            raise ValueError(
                f"max_new_tokens={max_new_tokens} is more than this widget offers "
                f"({MAX_NEW_TOKENS_LIMIT}); pass a smaller value"
            )
        if system_prompt is not None and not isinstance(system_prompt, str):
            raise ValueError(f"system_prompt must be a string (or None for none), got {type(system_prompt).__name__}")
        if not isinstance(thinking, bool):
            raise ValueError(f"thinking must be True or False (the think switch), got {thinking!r}")
        if tools is not None:
            functions_by_name(tools)  # ValueError now, not at the first message
        self.tools = tools
        self.model = model
        self.processor = tokenizer if hasattr(tokenizer, "image_processor") else None  # a model that sees
        self.tokenizer = self.processor.tokenizer if self.processor is not None else tokenizer
        self.background = not on_colab() if background is None else bool(background)
        self._messages = []  # the chat without its system message (that lives in the system field)
        self._job = None
        self._lock = threading.Lock()

        window = chat_window.build(
            system_prompt or "", max_new_tokens, temperature, MAX_NEW_TOKENS_LIMIT, thinking, self.processor is not None
        )
        self.picture = window.picture  # the picture upload (None for a model that cannot see)
        self.system_prompt, self.max_new_tokens, self.decoding = (
            window.system_prompt,
            window.max_new_tokens,
            window.decoding,
        )
        self.temperature, self.view, self.status, self.input = (
            window.temperature,
            window.view,
            window.status,
            window.input,
        )
        self.thinking = window.thinking
        self.send_button, self.stop_button, self.reset_button = window.send, window.stop, window.reset
        self.ui = window.ui
        self.decoding.observe(self._on_decoding, names="value")
        self._enter = chat_window.EnterToSend(self.input, self.send)  # Enter sends; leaving the box does not
        self.send_button.on_click(lambda _: self.send())
        self.stop_button.on_click(lambda _: self.stop())
        self.reset_button.on_click(lambda _: self.reset())
        if history is not None:
            self.history = history

    # ----------------------------------------------------------------- reading and setting the chat
    @property
    def history(self):
        """The chat as transformers takes it (a copy): the system message, if any, then the messages."""
        with self._lock:
            messages = [dict(message) for message in self._messages]
        system = self.system_prompt.value
        return ([{"role": "system", "content": system}] if system else []) + messages

    @history.setter
    def history(self, chat):
        """Replace the conversation (a streaming reply is stopped and dropped).

        A leading system message fills the system field (text blocks joined); without one, the field is
        cleared, so `widget.history = chat` followed by `widget.history` gives `chat` back. `[]` clears
        everything. A malformed chat raises ValueError (also shown in the widget) and changes nothing.
        """
        try:
            if not (isinstance(chat, list) and not chat):
                validate_chat(chat)
            system, messages = split_system_prompt(chat)
        except ValueError as error:
            self._show_status(f"history not changed: {error}", error=True)
            raise
        self._cancel_job()  # everything checked: only now is the old conversation replaced
        self.system_prompt.value = system
        with self._lock:
            self._messages = [dict(message) for message in messages]
        self._render_view()
        self._show_status("")

    @property
    def settings(self):
        """The generation settings the next reply uses (`generation.generation_settings`)."""
        greedy = self.decoding.value == "greedy"
        return generation_settings(
            max_new_tokens=self.max_new_tokens.value,
            temperature=0.0 if greedy else self.temperature.value,
        )

    @property
    def busy(self):
        """True while a reply is being generated."""
        return self._job is not None

    # ----------------------------------------------------------------- actions (buttons and code)
    def send(self, text=None, picture=None):
        """Send `text` (default: the input box's text) and stream the reply in the background.

        `picture` (a PIL image; default: the one uploaded, if any) goes with the text as an image block, for a
        model that sees; the upload is emptied once the reply is in (a failed reply leaves it, to send again).
        Returns at once: True if a reply started, False if there was nothing to send, a reply is
        still streaming, or the chat, the picture or the settings were rejected (the widget says why).
        """
        from_box = text is None
        if not from_box and not isinstance(text, str):
            message = f'send() takes the message as a string, got {type(text).__name__}; write widget.send("Hi!")'
            self._show_status(message, error=True)
            raise TypeError(message)
        text = (self.input.value if from_box else text).strip()
        if not text:
            return False
        if self.busy:
            self._show_status("A reply is still streaming: press Stop, or send when it is done.")
            return False
        uploaded = picture is None and self.picture is not None and bool(self.picture.value)
        try:
            picture = chat_window.picture_to_send(picture, self.picture, self.processor is not None)
            user_message = {"role": "user", "content": text}
            if picture is not None:
                user_message["content"] = [{"type": "image", "image": picture}, {"type": "text", "text": text}]
            chat = self.history + [user_message]
            validate_chat(chat)
            settings = self.settings
        except ValueError as error:
            self._show_status(str(error), error=True)
            return False
        job = _Job(thinking=self.thinking.value)
        job.uploaded = uploaded
        with self._lock:
            self._messages.append(user_message)
            self._job = job
        if from_box:
            self._set_input("")
        reply_view = self._message_widget("assistant", "", streaming=True)
        user_view = self._message_widget("user", text, pictures=message_pictures(user_message))
        self.view.children = self.view.children + (user_view, reply_view)
        self._show_busy(True)
        self._show_status("replying…")
        if not self.background:  # Colab: stream from this thread, so every update reaches the page
            self._stream(job, chat, settings, reply_view, text)
            return True
        threading.Thread(
            target=self._stream,
            args=(job, chat, settings, reply_view, text),
            daemon=True,
            name="chatkit-chat-reply",
        ).start()
        return True

    def stop(self):
        """Stop the reply being generated; the text so far stays as the assistant's message."""
        job = self._job
        if job is not None:
            job.stop_event.set()

    def reset(self):
        """Stop any reply and clear the conversation and the picture upload; the system prompt and settings stay."""
        self._cancel_job()
        with self._lock:
            self._messages = []
        if self.picture is not None:
            chat_window.clear_upload(self.picture)
        self._render_view()
        self._show_status("")

    def wait(self, timeout=None):
        """Block until the current reply is finished (or `timeout` seconds passed); True if idle."""
        job = self._job
        if job is not None:
            job.done.wait(timeout)
        return not self.busy

    # ----------------------------------------------------------------- the background stream
    def _model_chat(self, chat, max_new_tokens, switch):
        """The chat as the model gets it, notes for the reader on what was adapted, and whether its prompt
        opens a thought (`switch`: the template's thinking switch, if on)."""
        notes = []
        if self.tokenizer is None:  # a model behind a server: the server applies its template
            return chat, notes, False
        prompt, folded = apply_template_with_fallback(  # a model that sees: its processor holds the template
            self.processor or self.tokenizer, chat, announce=False, tokenize=False, add_generation_prompt=True, **switch
        )
        if folded:
            chat = fold_system_message(chat)
            notes.append(
                "This model's chat template rejects system messages: the system prompt was "
                "folded into the first user message."
            )
        context = getattr(getattr(self.model, "config", None), "max_position_embeddings", None)
        if isinstance(context, int) and context > 0:
            chat, dropped = fit_to_context(chat, self.tokenizer, context, max_new_tokens, announce=False, **switch)
            if dropped:
                notes.append(
                    f"The {dropped} oldest messages were left out to fit the model's context of "
                    f"{context} tokens (the history keeps them)."
                )
        return chat, notes, prompt.rstrip().endswith("<think>")

    def _stream(self, job, chat, settings, reply_view, text):
        views = [reply_view]  # the view the next reply streams into (send made the first one)
        thoughts = []  # the thought of the reply generate wrote, until its message comes out of the loop
        switch = {"enable_thinking": job.thinking}  # off said out loud: Qwen3's template thinks unless told

        def generate(messages):
            if not views:  # after a tool call and its results: a new assistant view, unless Stop came
                if job.stop_event.is_set() or job.cancelled:
                    return None  # the calls and their results stay; tool_loop asks for no new reply
                views.append(self._message_widget("assistant", "", streaming=True))
                self.view.children = self.view.children + (views[0],)
            reply, thought, answer = "", "", ""
            for piece in stream_reply(
                self.model,
                self.tokenizer,
                messages,
                stop_event=job.stop_event,
                **settings,
                **switch,
                **({"tools": self.tools} if self.tools else {}),
                **({"processor": self.processor} if self.processor is not None else {}),
            ):
                reply += piece
                thought, answer = split_thought(reply, job.opened) if job.thinking else ("", reply)
                if not job.cancelled:
                    views[0].value = message_html("assistant", answer, streaming=True, thought=thought)
            thoughts.append(thought)
            return answer  # the tool loop reads calls in the answer only, never in the thought

        new = []  # the reply, and before it any tool calls and their results
        try:
            chat, job.notes, job.opened = self._model_chat(chat, settings["max_new_tokens"], switch)
            if job.notes and not job.cancelled:
                self._show_status(" ".join(job.notes + ["replying…"]))
            replies = (
                tool_loop(generate, self.tokenizer, chat, self.tools)
                if self.tools
                else [{"role": "assistant", "content": generate(chat)}]
            )
            try:
                for message in replies:
                    new.append(message)
                    if message["role"] == "tool":
                        self.view.children = self.view.children + (self._message_widget("tool", message["content"]),)
                    else:
                        thought = thoughts.pop()
                        if thought:  # in the loop's chat too: the template shows this turn's thoughts
                            message["thinking"] = thought
                        views.pop().value = message_html("assistant", message_text(message), thought=thought)
                        if job.stop_event.is_set() or job.cancelled:
                            break  # stopped during this reply: it stays as written; a call in it is not run
            except ToolLoopError:
                job.notes.append(
                    f"The limit of {MAX_TOOL_CALLS} tool calls was reached without an answer: the "
                    "calls so far are kept. Ask again, or check what the tools return."
                )
        except Exception as error:  # noqa: BLE001 - any failure must reach the reader, not kill the widget
            self._finish(job, failed=(text, error))
        else:
            self._finish(job, new)
        finally:
            job.done.set()

    def _finish(self, job, messages=None, failed=None):
        with self._lock:
            if job.cancelled or self._job is not job:
                return
            if failed is None:
                self._messages += messages
            else:
                self._messages.pop()  # the user's message: it never got a reply
        if failed is None:
            if job.uploaded:
                chat_window.clear_upload(self.picture)
            stopped = job.stop_event.is_set()
            self._show_status(" ".join((["Stopped."] if stopped else []) + job.notes))
        else:
            text, error = failed
            self._render_view()
            if not self.input.value:
                self._set_input(text)
            self._show_status(
                f"The reply failed ({type(error).__name__}: {error}). Your message is back in the input box.",
                error=True,
            )
        self._show_busy(False)
        with self._lock:  # idle only now, so a new message cannot start before the buttons are reset
            if self._job is job:
                self._job = None

    def _cancel_job(self, timeout=10):
        """Stop the current reply, wait briefly for it to end, and make sure its result is dropped."""
        with self._lock:
            job, self._job = self._job, None
            if job is not None:
                job.cancelled = True
        if job is not None:
            job.stop_event.set()
            job.done.wait(timeout)
            self._show_busy(False)

    # ----------------------------------------------------------------- view helpers
    def _message_widget(self, role, content, streaming=False, thought="", pictures=()):
        return chat_window.message_widget(role, content, streaming, thought, pictures)

    def _render_view(self):
        with self._lock:
            messages = list(self._messages)
        self.view.children = tuple(
            self._message_widget(m["role"], message_text(m), thought=message_thought(m), pictures=message_pictures(m))
            for m in messages
        )

    def _show_status(self, text, error=False):
        self.status.value = status_html(text, error)

    def _show_busy(self, busy):
        self.send_button.disabled = busy
        self.stop_button.disabled = not busy

    def _set_input(self, text):
        self._enter.set(text)

    def _on_decoding(self, change):
        self.temperature.disabled = change["new"] == "greedy"

    # ----------------------------------------------------------------- display
    def __repr__(self):
        name = describe_model(getattr(self.model, "name_or_path", "") or type(self.model).__name__)
        count = len(self.history)
        return f"ChatWidget({name}, {count} message{'' if count == 1 else 's'})"

    def _ipython_display_(self):
        """Show the widget's view, with this object's repr as its text (the view's model id is random) and
        the transcript as HTML: what GitHub and nbviewer show, since they cannot run the live widget."""
        transcript = "".join(
            message_html(m["role"], message_text(m), thought=message_thought(m), pictures=message_pictures(m))
            for m in self.history
        )
        display_widget(self.ui, repr(self), f'<div class="chatkit-transcript">{transcript}</div>')


def chat_widget(model_id=None, **kwargs):
    """Load `model_id` (default: `chatkit.default_model()`) and return a `ChatWidget` for it.

    Keyword arguments go to `ChatWidget` (system_prompt, max_new_tokens, temperature, history, thinking).
    A vision-language model comes with its processor (`chatkit.load_model`): the window takes pictures.
    """
    model, tokenizer = load_model(model_id or default_model())
    return ChatWidget(model, tokenizer, **kwargs)
