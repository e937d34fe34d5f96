"""The chat widget on ipywidgets 7, in the classic Notebook 6.5 that goes with it, in a real browser.

Colab ships ipywidgets 7; JupyterLab 4 (tests/test_browser.py) runs ipywidgets 8. This test needs a
Python with Colab's versions (notebook 6.5, ipywidgets 7.7) and chatkit installed: `make test-colab`
builds one and runs this file with CHATKIT_CLASSIC_PYTHON pointing at it; without it, it is skipped.
"""

import os
from pathlib import Path

import nbformat
import pytest
from lab_browser import chromium, jupyter_lab, missing_browser_reason

CLASSIC_PYTHON = os.environ.get("CHATKIT_CLASSIC_PYTHON")
pytestmark = [
    pytest.mark.skipif(missing_browser_reason() is not None, reason=str(missing_browser_reason())),
    pytest.mark.skipif(not CLASSIC_PYTHON, reason="CHATKIT_CLASSIC_PYTHON not set: run `make test-colab`"),
]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "build" / "browser"


def test_chat_widget_answers_in_the_classic_notebook_with_ipywidgets_7(tmp_path):
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [
        nbformat.v4.new_code_cell(
            "import chatkit, ipywidgets\n"
            "model, tokenizer = chatkit.load_model(chatkit.embedded_model_path())\n"
            "print('ipywidgets', ipywidgets.__version__)\n"
            "chat = chatkit.ChatWidget(model, tokenizer, system_prompt='', max_new_tokens=32)\n"
            "chat"
        )
    ]
    nbformat.write(notebook, tmp_path / "widget.ipynb")
    with jupyter_lab(tmp_path, classic_python=CLASSIC_PYTHON) as server, chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.set_default_timeout(60_000)
        page.goto(f"{server.url}/notebooks/widget.ipynb?token={server.token}")
        page.wait_for_function(
            "() => window.Jupyter && Jupyter.notebook && Jupyter.notebook.kernel"
            " && Jupyter.notebook.kernel.is_connected() && Jupyter.notebook.kernel.widget_manager"
        )
        # ipywidgets 7's manager first asks the kernel for the widgets it already has, then re-renders
        # outputs holding widgets; cells run before that finishes get their widgets loaded twice, and the
        # page's copies stop following the kernel (seen: an input box that never clears, a reply that never
        # shows). A person opening a notebook waits that long anyway; so does the test.
        page.wait_for_timeout(2_000)
        page.evaluate("Jupyter.notebook.execute_all_cells()")
        chat = page.locator(".chatkit-chat").first
        box = chat.locator(".chatkit-input input")
        try:
            box.wait_for()
        finally:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "classic_notebook_loaded.png"))
        assert "ipywidgets 7." in page.locator(".output_text").first.inner_text()
        assert page.locator(".chatkit-chat").count() == 1
        box.click()
        box.type("Hi!")
        box.press("Enter")
        reply = chat.locator(".chatkit-view .chatkit-assistant .chatkit-content")
        page.wait_for_function(  # the HTML widget replaces its content on each update: query afresh
            """() => {
                const el = document.querySelector('.chatkit-view .chatkit-assistant .chatkit-content');
                return el && el.textContent.trim().length > 0 && !el.querySelector('.chatkit-cursor');
            }"""
        )
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "classic_notebook_ipywidgets7.png"))
        assert reply.first.inner_text().strip() == "Hello! How can I help you today?"
        assert box.input_value() == ""
