"""One model for a whole room: a server with an OpenAI-compatible API, and a client for it.

- `start_server(model)` runs `transformers serve` in a subprocess on 127.0.0.1 (a free port) and waits
  until it answers; the `Server` it returns has the `url` and `stop()` (or use it in a `with` block).
- `ServerModel(url, model)` stands in for a local model wherever chatkit takes one: `chatkit.reply`,
  `chatkit.stream_reply` and `ChatWidget` send the same `{"role", "content"}` messages to the server's
  `/v1/chat/completions` and stream the reply back, so a learner on a weak laptop chats with the
  instructor's model. Failures come back as one clear `ServerError` line: the server is down, does
  not serve that model, or did not answer in time.

The client speaks plain HTTP (Server-Sent Events for streaming) with the standard library, so it
needs nothing beyond chatkit; the `openai` package and `huggingface_hub.InferenceClient` talk to the
same endpoint (notebook 08).

Example:
    >>> import chatkit
    >>> with start_server(chatkit.embedded_model_path()) as server:        # doctest: +SKIP
    ...     remote = ServerModel(server.url, chatkit.embedded_model_path())
    ...     chatkit.reply(remote, None, [{"role": "user", "content": "Hi!"}])
    'Hello! How can I help you today?'
"""

import atexit
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from .generation import generation_settings

LOOPBACK = "127.0.0.1"


class ServerError(RuntimeError):
    """A server could not answer: the message says what happened and what to check."""


def free_port(host=LOOPBACK):
    """A TCP port that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _die_with_parent():
    """On Linux, have the server killed when the process that started it ends (a kernel restart)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def serve_command(model, port, host=LOOPBACK, continuous_batching=False, options=()):
    """The `transformers serve` command line for `model` on `host:port`, with more `options` (CLI flags)."""
    binary = shutil.which("transformers", path=os.path.dirname(sys.executable)) or shutil.which("transformers")
    command = [binary] if binary else [sys.executable, "-m", "transformers.cli.transformers"]
    command += ["serve", str(model), "--host", host, "--port", str(port)]
    return command + (["--continuous-batching"] if continuous_batching else []) + [str(o) for o in options]


class Server:
    """A running `transformers serve` process; `url` is its address, `stop()` ends it."""

    def __init__(self, process, url, log):
        self.process, self.url, self._log = process, url, log

    def stop(self, timeout=20):
        """End the server (and wait for it); stopping a stopped server does nothing."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        if not self._log.closed:
            self._log.close()
            os.unlink(self._log.name)

    def log(self):
        """What the server printed so far ("" once it is stopped)."""
        if self._log.closed:
            return ""
        with open(self._log.name, encoding="utf-8", errors="replace") as f:
            return f.read()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def __repr__(self):
        return f"Server({self.url}, {'running' if self.process.poll() is None else 'stopped'})"


def start_server(model, port=None, host=LOOPBACK, continuous_batching=False, options=(), timeout=120):
    """Start `transformers serve model` and return the `Server` once its /health answers.

    `options` are more `transformers serve` flags, e.g. `["--cb-num-blocks", "64"]`.
    Binds to loopback unless `host` says otherwise: `transformers serve` has no API key, so anyone who
    can reach the port can use the model. Raises ServerError with the server's output if it stops or
    does not answer within `timeout` seconds.
    """
    import tempfile

    port = port or free_port(host)
    log = tempfile.NamedTemporaryFile("w+", prefix="chatkit-serve-", suffix=".log", delete=False)
    env = dict(os.environ, TRANSFORMERS_NO_ADVISORY_WARNINGS="1")
    process = subprocess.Popen(serve_command(model, port, host, continuous_batching, options), stdout=log,
                               stderr=subprocess.STDOUT, env=env, text=True,
                               preexec_fn=_die_with_parent if sys.platform == "linux" else None)
    server = Server(process, f"http://{host}:{port}", log)
    atexit.register(server.stop)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = server.log()
            server.stop()
            raise ServerError(f"transformers serve stopped (exit code {process.returncode}):\n{output[-2000:]}")
        try:
            with urllib.request.urlopen(server.url + "/health", timeout=2):
                return server
        except OSError:
            time.sleep(0.2)
    output = server.log()
    server.stop()
    raise ServerError(f"transformers serve did not answer on {server.url} within {timeout} s:\n{output[-2000:]}")


def request_body(model, chat, stream, **settings):
    """The JSON body of a chat completion request for `chat` with chatkit's generation settings."""
    kwargs = generation_settings(**settings)
    body = {"model": model, "messages": chat, "stream": stream, "max_tokens": kwargs["max_new_tokens"],
            "temperature": kwargs.get("temperature", 0.0) if kwargs["do_sample"] else 0.0}
    if "top_p" in kwargs:
        body["top_p"] = kwargs["top_p"]
    return body


class ServerModel:
    """A model behind an OpenAI-compatible server, usable where chatkit takes a local model.

    Args:
        url: the server's address, e.g. "http://127.0.0.1:8000" (with or without "/v1").
        model: the model name the server serves (its id or path as the server was started with).
        api_key: sent as a bearer token (vLLM's `--api-key`); None sends none.
        timeout: seconds to wait for the server before giving up.
    """

    def __init__(self, url, model, api_key=None, timeout=60):
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, got {url!r}; e.g. 'http://127.0.0.1:8000'")
        self.url = url.rstrip("/").removesuffix("/v1")
        self.name_or_path = model
        self.api_key, self.timeout = api_key, timeout

    def __repr__(self):
        return f"ServerModel({self.url}, {self.name_or_path})"

    def stream_chat(self, chat, stop_event=None, **settings):
        """Yield the reply's text as the server streams it; stops early when `stop_event` is set."""
        body = json.dumps(request_body(self.name_or_path, chat, True, **settings)).encode()
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.url + "/v1/chat/completions", data=body, headers=headers)
        try:
            response = urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace").strip()[:300]
            raise ServerError(f"the server at {self.url} refused the request (HTTP {error.code}): {detail}; "
                              f"check the model name ({self.name_or_path!r} is what was asked for)") from None
        except (urllib.error.URLError, ConnectionError, TimeoutError, socket.timeout) as error:
            reason = getattr(error, "reason", error)
            if isinstance(reason, (TimeoutError, socket.timeout)):
                raise ServerError(f"the server at {self.url} did not answer within {self.timeout} s") from None
            raise ServerError(f"cannot reach the server at {self.url} ({reason}): is it running, "
                              "and is the address right?") from None
        with response:
            try:
                for line in response:
                    if stop_event is not None and stop_event.is_set():
                        return
                    line = line.decode().strip()
                    if not line.startswith("data:") or line == "data: [DONE]":
                        continue
                    for choice in json.loads(line[5:]).get("choices", []):
                        text = (choice.get("delta") or {}).get("content")
                        if text:
                            yield text
            except (TimeoutError, socket.timeout):
                raise ServerError(f"the server at {self.url} stopped answering for {self.timeout} s") from None
