"""JupyterLab in a real headless browser, for tests: a private server and a Playwright-driven Chromium.

`jupyter_lab(folder)` starts JupyterLab on 127.0.0.1 (a free port, a random token) with its config,
runtime, data, IPython, settings and workspace folders all inside a temporary folder, so nothing of the
machine's own Jupyter set-up leaks in and nothing is written outside; news and update checks are off.
`LabPage` drives one notebook in it: open, wait for the kernel, run all cells, read outputs.

The browser is the system's Chromium (Debian's `chromium` package) driven by the `playwright` Python
package through `executable_path`: no browser download (`playwright install` is never needed).
"""

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

PROMPTS = ".jp-CodeCell .jp-InputArea-prompt"  # a code cell's "[ ]:", "[*]:" (running or queued) or "[3]:"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Two notebooks run in two pages at once: keep the one not in front at full speed.
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]


def find_chromium():
    """Path of the system Chromium (CHATKIT_CHROMIUM overrides), or None."""
    for candidate in (os.environ.get("CHATKIT_CHROMIUM"), *CHROMIUM_CANDIDATES, shutil.which("chromium")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def missing_browser_reason():
    """Why the browser tests cannot run here (None if they can)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed: pip install -c constraints.txt playwright"
    if find_chromium() is None:
        return (
            "no Chromium at /usr/bin/chromium: install Debian's package (sudo apt-get install chromium), "
            "or set CHATKIT_CHROMIUM to a Chromium binary; `make setup` does it when it can"
        )
    return None


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_settings(settings_dir):
    """Lab settings: no news toast, no update checks, every cell kept in the page (no windowing)."""
    files = {
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
            "fetchNews": "false",
            "checkForUpdates": False,
        },
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    }
    for name, content in files.items():
        path = settings_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content))


class LabServer:
    def __init__(self, url, token, process, log_path):
        self.url, self.token, self.process, self.log_path = url, token, process, log_path

    def notebook_url(self, name):
        return f"{self.url}/lab/tree/{name}?reset&token={self.token}"

    def log(self):
        return self.log_path.read_text(errors="replace")[-4000:]


@contextlib.contextmanager
def jupyter_lab(folder, timeout=60, classic_python=None):
    """Run JupyterLab serving `folder`; yield a LabServer; shut it down (kernels included) afterwards.

    `classic_python`: run the classic Notebook (version 6, ipywidgets 7) of that Python instead.
    """
    with tempfile.TemporaryDirectory(prefix="chatkit-lab-") as tmp:
        tmp = Path(tmp)
        port, token = _free_port(), secrets.token_hex(16)
        env = dict(os.environ)
        env.update(
            {
                "JUPYTER_CONFIG_DIR": str(tmp / "config"),
                "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
                "JUPYTER_DATA_DIR": str(tmp / "data"),
                "IPYTHONDIR": str(tmp / "ipython"),
                "HF_HUB_OFFLINE": "1",
                "HF_HUB_DISABLE_PROGRESS_BARS": "1",
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            }
        )
        env.pop("CHATKIT_MODEL", None)
        _write_settings(tmp / "settings")
        log_path = tmp / "lab.log"
        command = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            "--ServerApp.allow_root=True",
            f"--ServerApp.root_dir={folder}",
            f"--LabApp.user_settings_dir={tmp / 'settings'}",
            f"--LabApp.workspaces_dir={tmp / 'workspaces'}",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]
        if classic_python is not None:
            env["PATH"] = f"{Path(classic_python).parent}{os.pathsep}{env['PATH']}"
            command = [
                str(classic_python),
                "-m",
                "notebook",
                "--no-browser",
                "--ip=127.0.0.1",
                f"--port={port}",
                "--NotebookApp.port_retries=0",
                f"--NotebookApp.token={token}",
                "--allow-root",
                f"--NotebookApp.notebook_dir={folder}",
            ]
        with open(log_path, "wb") as log:
            process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=folder)
        server = LabServer(f"http://127.0.0.1:{port}", token, process, log_path)
        try:
            _wait_until_up(server, timeout)
            yield server
        finally:
            _shut_down(server)


def _wait_until_up(server, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with code {server.process.returncode}:\n{server.log()}")
        try:
            with urllib.request.urlopen(f"{server.url}/api/status?token={server.token}", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"JupyterLab did not answer within {timeout} s:\n{server.log()}")


def _shut_down(server):
    if server.process.poll() is None:
        request = urllib.request.Request(
            f"{server.url}/api/shutdown", method="POST", headers={"Authorization": f"token {server.token}"}
        )
        with contextlib.suppress(OSError):
            urllib.request.urlopen(request, timeout=5).close()
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=5)


@contextlib.contextmanager
def chromium():
    """A headless system Chromium with a fresh profile, driven by Playwright; yields a browser."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=find_chromium(), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class LabPage:
    """One notebook open in JupyterLab, in its own browser page."""

    def __init__(self, browser, server, notebook, timeout_ms=40_000):
        """Start opening `notebook`; call `wait_for_kernel()` before using it (pages load in parallel)."""
        self.notebook = notebook
        self.page = browser.new_page(viewport={"width": 1280, "height": 1000})
        self.page.set_default_timeout(timeout_ms)
        self.page.goto(server.notebook_url(notebook), wait_until="commit")

    def wait_for_kernel(self):
        # The execution indicator alone reads "idle" while there is no kernel yet (a race that opens the
        # Select Kernel dialog); the toolbar's kernel name shows once the kernel is attached.
        self.page.wait_for_selector(".jp-Notebook .jp-Cell")
        self.page.wait_for_function(
            """() => {
                const name = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Toolbar-kernelName');
                const state = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator');
                return name && name.textContent.includes('Python') && state && state.dataset.status === 'idle';
            }"""
        )

    def run_all(self, tries=3):
        """Run > Run All Cells; returns once a cell has started (see `wait_until_cells_done`).

        A click on a menu that is not ready yet is lost, so it is tried again if no cell starts.
        """
        for _ in range(tries):
            self.page.click(".lm-MenuBar-item:has-text('Run')")
            self.page.click('.lm-Menu-item[data-command="runmenu:run-all"]')
            try:
                self.page.wait_for_function(
                    f"() => [...document.querySelectorAll('{PROMPTS}')].some(p => /^\\[(\\*|\\d+)\\]:$/.test(p.textContent.trim()))",
                    timeout=15_000,
                )
                return
            except Exception:
                self.page.keyboard.press("Escape")
        raise AssertionError(f"Run All Cells started no cell in {self.notebook} after {tries} tries")

    def prompts(self):
        return [p.strip() for p in self.page.locator(PROMPTS).all_inner_texts()]

    def wait_until_cells_done(self, timeout_ms=120_000):
        try:
            self.page.wait_for_function(
                f"""() => {{
                    const prompts = [...document.querySelectorAll('{PROMPTS}')];
                    return prompts.length > 0 && prompts.every(p => /^\\[\\d+\\]:$/.test(p.textContent.trim()));
                }}""",
                timeout=timeout_ms,
            )
        except Exception as error:
            raise AssertionError(
                f"the cells of {self.notebook} did not all finish within {timeout_ms / 1000:.0f} s; "
                f"their prompts: {self.prompts()}"
            ) from error

    def error_outputs(self):
        """Text of every stderr or error output in the notebook (tracebacks render as stderr)."""
        return self.page.locator(
            '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
        ).all_inner_texts()

    def run_new_cell(self, source):
        """Add a code cell at the end of the notebook, run it, and return its output text."""
        cells = self.page.locator(".jp-Notebook .jp-Cell")
        count = cells.count()
        cells.last.locator(".jp-InputPrompt").click()  # select the last cell (command mode)
        self.page.keyboard.press("Escape")
        self.page.keyboard.press("b")  # insert a cell below
        self.page.wait_for_function(f"document.querySelectorAll('.jp-Notebook .jp-Cell').length === {count + 1}")
        new_cell = cells.nth(count)
        new_cell.locator(".cm-content").click()
        self.page.keyboard.type(source)
        self.page.keyboard.press("Shift+Enter")
        prompt = new_cell.locator(".jp-InputArea-prompt")
        self.page.wait_for_function("el => /^\\[\\d+\\]:$/.test(el.textContent.trim())", arg=prompt.element_handle())
        return new_cell.locator(".jp-OutputArea-output").all_inner_texts()
