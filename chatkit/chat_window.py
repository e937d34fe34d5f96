"""The chat window's widgets: what a learner sees, types into and clicks, without what happens behind.

`build()` makes the ipywidgets of `chatkit.widgets.ChatWidget`'s window (system prompt, settings and the
"think" switch, the conversation view, the status line, the input box and the Send / Stop / Reset buttons,
and for a model that sees, a picture upload), each with a CSS class for styling and for browser tests;
`message_widget()` one message of the conversation (a thought folded above its text, its pictures);
`uploaded_picture()` and `clear_upload()` read and empty the upload on ipywidgets 8 (a tuple of files) and
7 (a dict by file name).
`ChatWidget` wires them to the logic: sending, streaming, tools, history. ipywidgets is imported only
when a window is made, so the rest of chatkit works without a UI stack; works with ipywidgets 8 and 7.

Example:
    >>> window = build("You are terse.", max_new_tokens=64, temperature=0.0, max_new_tokens_limit=1024)
    >>> window.system_prompt.value, window.decoding.value, window.temperature.disabled, window.thinking.value
    ('You are terse.', 'greedy', True, False)
"""

import io
import threading
import warnings
from types import SimpleNamespace

from .chat_view import message_html

ENTER_GRACE_S = 0.3  # after Enter, how long the new value of the input box may take to arrive


def ipywidgets():
    """ipywidgets, imported only when a window is made: the rest of chatkit works without a UI stack."""
    try:
        import ipywidgets
    except ImportError as error:
        raise ImportError(
            "The chat widget needs ipywidgets: pip install ipywidgets (Jupyter and Colab have it)."
        ) from error
    return ipywidgets


def build(system_prompt, max_new_tokens, temperature, max_new_tokens_limit, thinking=False, pictures=False):
    """The window's widgets, as attributes of one namespace; `ui` is the box that holds them all. `picture`
    is a file upload for one picture when `pictures` is on, else None."""
    ipw = ipywidgets()
    window = SimpleNamespace(
        system_prompt=ipw.Textarea(
            value=system_prompt,
            description="System",
            rows=2,
            placeholder="optional: how the assistant should behave",
            layout=ipw.Layout(width="98%"),
        ),
        max_new_tokens=ipw.BoundedIntText(
            value=max_new_tokens,
            min=1,
            max=max_new_tokens_limit,
            description="max new tokens",
            style={"description_width": "initial"},
            layout=ipw.Layout(width="190px"),
        ),
        decoding=ipw.ToggleButtons(
            options=["greedy", "sample"],
            value="greedy" if temperature == 0 else "sample",
            style={"button_width": "70px"},
        ),
        temperature=ipw.FloatSlider(
            value=temperature if temperature > 0 else 0.7,
            min=0.05,
            max=max(2.0, temperature),
            step=0.05,
            description="temperature",
            disabled=temperature == 0,
            readout_format=".2f",
            style={"description_width": "initial"},
        ),
        thinking=ipw.Checkbox(value=thinking, description="think", indent=False, layout=ipw.Layout(width="70px")),
        view=ipw.VBox(layout=ipw.Layout(width="98%")),
        status=ipw.HTML(),
        input=ipw.Text(
            placeholder="Type a message and press Enter",
            continuous_update=False,
            layout=ipw.Layout(flex="1 1 auto", width="auto"),
        ),
        send=ipw.Button(
            description="Send", button_style="primary", icon="paper-plane", layout=ipw.Layout(width="90px")
        ),
        stop=ipw.Button(description="Stop", icon="stop", disabled=True, layout=ipw.Layout(width="80px")),
        reset=ipw.Button(description="Reset", icon="trash", layout=ipw.Layout(width="80px")),
        picture=ipw.FileUpload(accept="image/*", multiple=False, description="Picture") if pictures else None,
    )
    # CSS classes: stable selectors for styling and for browser tests.
    for name in ("system_prompt", "max_new_tokens", "decoding", "temperature", "thinking", "view", "status", "input"):
        getattr(window, name).add_class(f"chatkit-{name.replace('system_prompt', 'system').replace('_', '-')}")
    for name in ("send", "stop", "reset") + (("picture",) if pictures else ()):
        getattr(window, name).add_class(f"chatkit-{name}")
    settings = ipw.HBox([window.max_new_tokens, window.decoding, window.temperature, window.thinking])
    buttons = [window.send, window.stop, window.reset] + ([window.picture] if pictures else [])
    controls = ipw.HBox([window.input, *buttons], layout=ipw.Layout(width="98%"))
    window.ui = ipw.VBox([window.system_prompt, settings, window.view, window.status, controls])
    window.ui.add_class("chatkit-chat")
    return window


def message_widget(role, content, streaming=False, thought="", pictures=()):
    """One message of the conversation view: its HTML bubble, with CSS classes for its role."""
    view = ipywidgets().HTML(message_html(role, content, streaming, thought, pictures))
    view.add_class("chatkit-message")
    view.add_class(f"chatkit-{role}")
    return view


def uploaded_picture(upload):
    """The picture in a file upload, as an RGB PIL image, or None when there is none.

    ipywidgets 8 holds a tuple of files, each {"name", "content", ...}; ipywidgets 7 a dict by file name, each
    {"metadata": {"name", ...}, "content"}. A file Pillow cannot read raises ValueError, naming it."""
    from PIL import Image, UnidentifiedImageError

    value = upload.value
    files = [dict(f, name=f["metadata"]["name"]) for f in value.values()] if isinstance(value, dict) else list(value)
    if not files:
        return None
    name, content = files[-1].get("name", "the file"), bytes(files[-1]["content"])
    try:
        return Image.open(io.BytesIO(content)).convert("RGB")
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(
            f"{name} is not a picture this kernel can read ({len(content):,} bytes); upload a PNG, JPEG, GIF "
            "or WebP file, or clear it with Reset"
        ) from error


def picture_to_send(picture, upload, can_see):
    """The picture a message carries: `picture`, else the one in `upload` (None: no upload), else None.

    ValueError when there is one and the model cannot see (`can_see`), or it is not a picture."""
    if picture is None and upload is not None:
        picture = uploaded_picture(upload)
    if picture is not None and not callable(getattr(picture, "save", None)):
        raise ValueError(f"picture must be a PIL image, got {type(picture).__name__}; open a file with PIL.Image.open")
    if picture is not None and not can_see:
        raise ValueError(
            "this model cannot see pictures: it was given a tokenizer, not a processor. Load a vision-language "
            "model (chatkit.setup(vision=True), AutoModelForImageTextToText) and pass its AutoProcessor"
        )
    return picture


def clear_upload(upload):
    """Empty a file upload, on ipywidgets 8 (its value is settable) and 7 (its value is read-only: the files'
    lists and the counter the button shows are reset, and the value with them)."""
    if isinstance(upload.value, dict):
        upload.metadata, upload.data = [], []
        upload.set_trait("value", {})
        upload._counter = 0
    else:
        upload.value = ()


class EnterToSend:
    """Enter in `box` calls `send()`; leaving the box does not.

    The box sends its value on Enter and on losing focus; Enter also sends a "submit" event (ipywidgets 7 and
    8), which arrives before the value: it arms the next value to send. Unchanged text sends no value: a
    short timer then sends what is there."""

    def __init__(self, box, send):
        self.box, self.send = box, send
        self.pressed = None  # the timer armed by the last Enter, until its value arrives
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            box.on_submit(lambda _: self._on_enter())
        box.observe(self._on_value, names="value")

    def set(self, text):
        """Put `text` in the box without sending it."""
        self._disarm()
        self.box.value = text

    def _on_enter(self):
        self._disarm()
        timer = self.pressed = threading.Timer(ENTER_GRACE_S, lambda: self._send_unchanged(timer))
        timer.daemon = True
        timer.start()

    def _send_unchanged(self, timer):
        if self.pressed is timer:  # no new value came after Enter: the text was already there
            self.pressed = None
            self.send()

    def _on_value(self, change):
        if self.pressed is not None and change["new"].strip():
            self._disarm()
            self.send()

    def _disarm(self):
        timer, self.pressed = self.pressed, None
        if timer is not None:
            timer.cancel()
