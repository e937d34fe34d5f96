"""The notebooks in real JupyterLab, in a real (headless) browser: the chat widget is typed into and
answers; the quickstart runs without an error output. Screenshots go to build/browser/ (not committed).

See tests/lab_browser.py for how JupyterLab and Chromium are started; `make setup` installs Chromium.
"""

import re
import shutil
from pathlib import Path

import pytest
from lab_browser import LabPage, chromium, jupyter_lab, missing_browser_reason

REPO = Path(__file__).resolve().parents[1]
SCREENSHOTS = REPO / "build" / "browser"
MESSAGE = "Hello from the browser test!"

pytestmark = pytest.mark.skipif(missing_browser_reason() is not None, reason=str(missing_browser_reason()))


NOTEBOOKS = ("06_chat_app.ipynb", "01_quickstart.ipynb")


@pytest.fixture(scope="module")
def lab_pages(tmp_path_factory):
    """Both notebooks open in JupyterLab, all their cells started (they run side by side).

    JupyterLab serves a copy of the notebooks: the UI saves what it runs, the repo's files stay as they are.
    """
    folder = tmp_path_factory.mktemp("notebooks")
    for notebook in NOTEBOOKS:
        shutil.copy(REPO / "notebooks" / notebook, folder / notebook)
    with jupyter_lab(folder) as server, chromium() as browser:
        pages = {notebook: LabPage(browser, server, notebook) for notebook in NOTEBOOKS}
        for lab_page in pages.values():
            lab_page.wait_for_kernel()
            lab_page.run_all()
        yield pages


def test_chat_widget_answers_in_jupyterlab(lab_pages):
    lab_page = lab_pages["06_chat_app.ipynb"]
    page = lab_page.page
    lab_page.wait_until_cells_done()
    assert lab_page.error_outputs() == []

    chat = page.locator(".chatkit-chat").first
    chat.scroll_into_view_if_needed()
    messages = chat.locator(".chatkit-view .chatkit-message")
    before = messages.count()
    system_prompt = chat.locator(".chatkit-system textarea").input_value()
    history_before = before + (1 if system_prompt else 0)

    box = chat.locator(".chatkit-input input")
    box.click()
    box.type(MESSAGE)
    box.press("Enter")

    # The reply streams in; it is complete when the Send button is enabled again and the cursor is gone.
    page.wait_for_function(
        """([chat, count]) => chat.querySelectorAll('.chatkit-view .chatkit-message').length === count
              && !chat.querySelector('.chatkit-cursor') && !chat.querySelector('button.chatkit-send').disabled""",
        arg=[chat.element_handle(), before + 2],
        timeout=30_000,
    )
    assert MESSAGE in messages.nth(before).inner_text()
    assert "chatkit-user" in messages.nth(before).get_attribute("class")
    assert "chatkit-assistant" in messages.nth(before + 1).get_attribute("class")
    assert messages.nth(before + 1).inner_text().startswith("assistant")
    assert chat.locator(".chatkit-error").count() == 0
    assert box.input_value() == ""  # the kernel cleared the box after sending

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    chat.screenshot(path=SCREENSHOTS / "06_chat_widget.png")
    box.scroll_into_view_if_needed()
    page.screenshot(path=SCREENSHOTS / "06_chat_app.png")

    # The kernel's view of the same conversation: two messages more, the last two ours and the model's.
    output = lab_page.run_new_cell(
        "print(len(chatbox.history), [m['role'] for m in chatbox.history[-2:]], chatbox.history[-2]['content'])"
    )
    assert [text.strip() for text in output] == [f"{history_before + 2} ['user', 'assistant'] {MESSAGE}"]

    # Reset, clicked in the browser, empties the conversation and keeps the system prompt.
    chat.locator("button.chatkit-reset").click()
    page.wait_for_function(
        "chat => chat.querySelectorAll('.chatkit-view .chatkit-message').length === 0", arg=chat.element_handle()
    )
    assert chat.locator(".chatkit-system textarea").input_value() == system_prompt


def test_quickstart_runs_in_jupyterlab_without_errors(lab_pages):
    lab_page = lab_pages["01_quickstart.ipynb"]
    lab_page.wait_until_cells_done()
    assert lab_page.error_outputs() == []
    prompts = lab_page.prompts()
    assert prompts and all(re.fullmatch(r"\[\d+\]:", p) for p in prompts)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    lab_page.page.screenshot(path=SCREENSHOTS / "01_quickstart.png")
