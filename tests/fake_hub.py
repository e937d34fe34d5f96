"""A tiny local stand-in for the Hugging Face Hub's HTTP errors, for testing error messages offline.

It answers every request for a repo whose name contains "gated" as the Hub does for a gated repo
without access (401 + `X-Error-Code: GatedRepo`), and every other request as an unknown repo
(404 + `X-Error-Code: RepoNotFound`). Bound to 127.0.0.1 on a free port; stops with the context.
"""

import contextlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    def _answer(self):
        if "gated" in self.path:
            status, code, message = 401, "GatedRepo", "Access to this model is restricted."
        else:
            status, code, message = 404, "RepoNotFound", "Repository not found."
        body = f'{{"error": "{message}"}}'.encode()
        self.send_response(status)
        self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_POST = _answer

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def fake_hub():
    """Run the fake Hub in a thread; yield its base URL (for HF_ENDPOINT)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run_against_fake_hub(code, hf_home):
    """Run `code` in a fresh Python whose Hub is the fake one (HF_ENDPOINT is read at import time).

    No token, an empty cache in `hf_home`; returns the CompletedProcess (stdout, stderr as text).
    """
    import os
    import subprocess
    import sys

    with fake_hub() as url:
        env = dict(os.environ, HF_ENDPOINT=url, HF_HUB_OFFLINE="0", HF_HOME=str(hf_home))
        env.pop("HF_TOKEN", None)
        return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
