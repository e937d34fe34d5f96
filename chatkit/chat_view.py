"""How a chat message looks in a notebook: one HTML bubble per message, its text escaped.

`message_html(role, text)` is what `ChatWidget` shows for each message; `status_html` its status line.
A thinking model's thought comes first in its bubble, folded: `<details>`, which a click opens. A message's
pictures (PIL images) show above its text, as PNG data URLs: the page holds them, nothing is fetched.

Example:
    >>> "&lt;b&gt;" in message_html("user", "<b>hi</b>")
    True
    >>> "<summary>Thought (2 words)</summary>" in message_html("assistant", "42", thought="Add up.")
    True
"""

import base64
import html
import io

# Inline styles (no stylesheet to install): one colour per role, text kept as written.
_BUBBLE_STYLE = {
    "user": "background:#e3f2fd; margin-left:15%;",
    "assistant": "background:#f1f3f4; margin-right:15%;",
    "system": "background:#fff8e1;",
    "tool": "background:#ede7f6; margin-right:15%;",
}


def _thought_html(thought):
    """A thought, folded: its length in words shows, its text (escaped) when the reader opens it."""
    words = len(thought.split())
    return (
        f'<details class="chatkit-thought"><summary>Thought ({words} word{"" if words == 1 else "s"})</summary>'
        f'<div style="white-space:pre-wrap; overflow-wrap:anywhere; color:#555;">{html.escape(thought)}</div>'
        "</details>"
    )


def picture_html(image, width=128):
    """A PIL image as an `<img>` of its PNG bytes (a data URL), `width` pixels wide, sharp when enlarged; a large
    photo is shrunk first (to twice `width` at most), so the page does not carry megabytes of pixels."""
    small = image.copy()
    small.thumbnail((2 * width, 2 * width))
    png = io.BytesIO()
    small.save(png, format="PNG")
    data = base64.b64encode(png.getvalue()).decode()
    return (
        f'<img class="chatkit-picture" src="data:image/png;base64,{data}" width="{width}" '
        'style="image-rendering:pixelated; display:block; margin:4px 0;">'
    )


def message_html(role, content, streaming=False, thought="", pictures=()):
    """The HTML of one message: its role, its thought (if any) folded, its pictures, and its content, all
    escaped so a reply can never inject markup."""
    body = html.escape(content) if content else "" if streaming else '<i style="color:#777">(empty reply)</i>'
    cursor = '<span class="chatkit-cursor">&#9612;</span>' if streaming else ""
    return (
        f'<div style="{_BUBBLE_STYLE.get(role, "")} padding:6px 10px; margin:4px 0; border-radius:8px;'
        ' line-height:1.4;">'
        f'<div style="font-size:0.8em; font-weight:bold; color:#555;">{html.escape(role)}</div>'
        f"{_thought_html(thought) if thought else ''}"
        f"{''.join(picture_html(picture) for picture in pictures)}"
        f'<div class="chatkit-content" style="white-space:pre-wrap; overflow-wrap:anywhere;">{body}{cursor}</div>'
        "</div>"
    )


def status_html(text, error=False):
    if not text:
        return ""
    if error:
        return f'<span class="chatkit-error" style="color:#b00020;">{html.escape(text)}</span>'
    return f'<span class="chatkit-info" style="color:#555;">{html.escape(text)}</span>'
