"""One model for a whole room: a server with an OpenAI-compatible API, and a client for it.

- `start_server(model)` runs `transformers serve` in a subprocess on 127.0.0.1 (a free port) and waits
  until it answers; the `Server` it returns has the `url`, the `command` it ran, and `stop()` (or use it
  in a `with` block). `transformers serve` checks no API key, so another address (the network) is
  refused unless the caller passes `allow_network=True`, and then it says what anyone there can do.
- `ServerModel(url, model)` stands in for a local model wherever chatkit takes one: `chatkit.reply`,
  `chatkit.stream_reply` and `ChatWidget` send the same `{"role", "content"}` messages (and `tools`) to
  the server's `/v1/chat/completions` and stream the reply back; Stop ends it at once, even while the
  server is silent. Failures come back as one clear `ServerError` line that says which: the server is
  down, wants an API key, does not serve that model, failed (its log says why), sent an error or a page
  that is not an event stream, cut the reply short, or did not answer in time.

What the OpenAI-style API cannot carry is refused, not dropped: a prefilled assistant message (the API
always starts a new reply), and generation settings it has no field for. `top_k` and
`repetition_penalty` travel in `transformers serve`'s own `generation_config` field (with
`do_sample=True` when sampling: the server would otherwise sample only if the model's own generation
config says so); other servers ignore that field. `enable_thinking` travels as the request's
`chat_template_kwargs` (`transformers serve` and vLLM pass them to the chat template).

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
import http.client
import ipaddress
import json
import math
import os
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
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


def is_loopback(host):
    """True for an address only this machine can reach: localhost, 127.x.x.x, ::1."""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost
        return False


def _check_timeout(timeout):
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not (0 < timeout < math.inf):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}; e.g. timeout=60")


class Server:
    """A running `transformers serve` process; `url` is its address, `command` what ran, `stop()` ends it."""

    def __init__(self, process, url, log, command=()):
        self.process, self.url, self._log, self.command = process, url, log, list(command)

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


def start_server(
    model, port=None, host=LOOPBACK, continuous_batching=False, options=(), timeout=120, allow_network=False
):
    """Start `transformers serve model` and return the `Server` once its /health answers.

    `options` are more `transformers serve` flags, e.g. `["--cb-num-blocks", "64"]`. The `Server`'s
    `command` is the command line it ran (`shlex.join(server.command)` prints it).
    Binds to loopback: `transformers serve` has no API key, so anyone who can reach the port can use the
    model. Another `host` (e.g. "0.0.0.0", the whole network) is refused unless `allow_network=True`,
    and then a warning says what anyone on the network can do. Raises ServerError with the server's
    output if it stops or does not answer within `timeout` seconds.
    """
    _check_timeout(timeout)
    if not is_loopback(host) and not allow_network:
        raise ValueError(
            f"host={host!r} opens the model to the network, and transformers serve checks no API key: anyone "
            "who can reach this machine could use it. Keep the default host (127.0.0.1, this machine only), "
            "or pass allow_network=True if that is what you mean (a classroom on a network you trust)"
        )
    port = port or free_port(host)
    command = serve_command(model, port, host, continuous_batching, options)
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    if not is_loopback(host):
        print(
            f"warning: {url} has no API key: anyone who can reach port {port} of this machine can send the "
            "model any prompt and read its replies, and keep it busy for everyone (there is no per-user "
            "limit). Stop it with server.stop() when the session ends."
        )
    log = tempfile.NamedTemporaryFile("w+", prefix="chatkit-serve-", suffix=".log", delete=False)
    env = dict(os.environ, TRANSFORMERS_NO_ADVISORY_WARNINGS="1")
    process = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        text=True,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )
    server = Server(process, url, log, command)
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


# Settings the API has no field of its own for, sent in transformers serve's `generation_config` field.
IN_GENERATION_CONFIG = ("top_k", "repetition_penalty")


def _tool_schema(tool):
    """A tool as the API carries it: {"type": "function", "function": {name, description, parameters}}."""
    if callable(tool):
        from transformers.utils import get_json_schema

        return get_json_schema(tool)
    if isinstance(tool, dict):
        return tool if "function" in tool else {"type": "function", "function": tool}
    raise ValueError(f"a tool must be a Python function or a JSON schema (dict), got {type(tool).__name__}")


def request_body(model, chat, stream, tools=None, enable_thinking=None, **settings):
    """The JSON body of a chat completion request for `chat` with chatkit's generation settings.

    Raises ValueError for what the API cannot carry: a chat that ends with an assistant message (a
    local model continues it; the API always starts a new reply) and settings it has no field for.
    """
    if chat and chat[-1].get("role") == "assistant":
        raise ValueError(
            "the chat ends with an assistant message, which a local model would continue (prefill); a server's "
            "chat API cannot: it always starts a new reply, so that text would be ignored. Remove the message "
            "(or put its text in the user's), or prefill with a local model"
        )
    kwargs = generation_settings(**settings)
    greedy = not kwargs.pop("do_sample")
    body = {
        "model": model,
        "messages": chat,
        "stream": stream,
        "max_tokens": kwargs.pop("max_new_tokens"),
        "temperature": 0.0 if greedy else kwargs.pop("temperature"),
    }
    if "top_p" in kwargs:
        body["top_p"] = kwargs.pop("top_p")
    extra = {name: kwargs.pop(name) for name in IN_GENERATION_CONFIG if name in kwargs}
    if kwargs:
        raise ValueError(
            f"a server cannot be sent {', '.join(sorted(kwargs))}: the chat API carries max_new_tokens, "
            f"temperature, top_p, {', '.join(IN_GENERATION_CONFIG)} and tools. Leave the others out, or use a "
            "local model"
        )
    if extra or not greedy:
        body["generation_config"] = json.dumps({"do_sample": not greedy, **extra})
    if tools:
        body["tools"] = [_tool_schema(tool) for tool in tools]
    if enable_thinking is not None:
        body["chat_template_kwargs"] = {"enable_thinking": bool(enable_thinking)}
    return body


def _hang_up(sock):
    """End a connection from our side: a thread reading it wakes up, the server sees the client gone."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # already closed
        pass


def _tool_call_text(call):
    """A tool call the server parsed, written back as text the way chatkit.tools.parse_reply reads it."""
    try:
        arguments = json.loads(call["arguments"] or "{}")
    except ValueError:
        arguments = call["arguments"]  # kept as sent; parse_reply leaves what it cannot read in the text
    return "<tool_call>" + json.dumps({"name": call["name"], "arguments": arguments}) + "</tool_call>"


class ServerModel:
    """A model behind an OpenAI-compatible server, usable where chatkit takes a local model.

    Args:
        url: the server's address, e.g. "http://127.0.0.1:8000" (with or without "/v1").
        model: the model name the server serves (its id or path as the server was started with).
        api_key: sent as a bearer token (vLLM's `--api-key`); None sends none.
        timeout: seconds to wait for the server (to answer, and between two pieces of a reply).
    """

    def __init__(self, url, model, api_key=None, timeout=60):
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, got {url!r}; e.g. 'http://127.0.0.1:8000'")
        _check_timeout(timeout)
        self.url = url.rstrip("/").removesuffix("/v1")
        self.name_or_path = model
        self.api_key, self.timeout = api_key, timeout

    def __repr__(self):
        return f"ServerModel({self.url}, {self.name_or_path})"

    def stream_chat(self, chat, stop_event=None, tools=None, **settings):
        """Yield the reply's text as the server streams it; stops at once when `stop_event` is set.

        Tool calls the server parsed come last, written `<tool_call>{"name": ..., "arguments": ...}</tool_call>`
        (what `chatkit.tools.parse_reply` reads).
        """
        body = json.dumps(request_body(self.name_or_path, chat, True, tools=tools, **settings)).encode()
        finished, calls = False, {}
        for line in self._lines(body, stop_event):
            line = line.decode(errors="replace").strip()
            if not line.startswith("data:"):
                continue  # blank lines and comments (": keep-alive") between events
            data = line[5:].strip()
            if data == "[DONE]":
                finished = True
                break
            try:
                event = json.loads(data)
            except ValueError:
                raise ServerError(
                    f"the server at {self.url} sent an event that is not JSON: {data[:300]!r}; its log says why"
                ) from None
            if "error" in event:
                error = event["error"]
                message = error.get("message", error) if isinstance(error, dict) else error
                raise ServerError(f"the server at {self.url} failed while replying: {message}; its log says more")
            for choice in event.get("choices") or []:
                delta = choice.get("delta") or {}
                if delta.get("content"):
                    yield delta["content"]
                for call in delta.get("tool_calls") or []:  # may come in pieces, by index
                    function = call.get("function") or {}
                    parts = calls.setdefault(call.get("index", len(calls)), {"name": "", "arguments": ""})
                    parts["name"] += function.get("name") or ""
                    parts["arguments"] += function.get("arguments") or ""
                finished = finished or bool(choice.get("finish_reason"))
        if stop_event is not None and stop_event.is_set():
            return
        if not finished:
            raise ServerError(
                f"the reply from {self.url} was cut short: the stream ended before the server said "
                "it was done, so the text is incomplete. The server may have stopped or crashed: "
                "its log says why"
            )
        for call in calls.values():
            yield _tool_call_text(call)

    def _lines(self, body, stop_event):
        """The response's lines as they arrive, read in a helper thread: Stop ends this at once, even while
        the server is silent (a short wait on the thread's queue, checking the event in between)."""
        lines, sockets, hung_up = queue.Queue(), [], threading.Event()

        def read():
            try:
                sock, response = self._post(body)
                sockets.append(sock)
                if hung_up.is_set():  # the reader left while the server was still answering the request
                    _hang_up(sock)
                with response:
                    for line in response:
                        lines.put(line)
                lines.put(None)
            except (TimeoutError, socket.timeout):
                lines.put(ServerError(f"the server at {self.url} stopped answering for {self.timeout} s"))
            except Exception as error:  # noqa: BLE001 - handed to the reader, raised there
                lines.put(error)

        threading.Thread(target=read, name="chatkit-server-read", daemon=True).start()
        try:
            while stop_event is None or not stop_event.is_set():
                try:
                    line = lines.get(timeout=0.05)
                except queue.Empty:
                    continue
                if line is None:
                    return
                if isinstance(line, BaseException):
                    raise line
                yield line
        finally:
            hung_up.set()
            for sock in sockets:
                _hang_up(sock)

    def _post(self, body):
        """Send the request; (socket, response) once the server accepted it, else a ServerError saying why."""
        parts = urllib.parse.urlsplit(self.url)
        connect = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        connection = connect(parts.hostname, parts.port, timeout=self.timeout)
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        try:
            connection.request("POST", parts.path + "/v1/chat/completions", body, headers)
            sock = connection.sock
            response = connection.getresponse()
        except (TimeoutError, socket.timeout):
            raise ServerError(f"the server at {self.url} did not answer within {self.timeout} s") from None
        except OSError as error:
            raise ServerError(
                f"cannot reach the server at {self.url} ({error}): is it running, and is the address right?"
            ) from None
        if response.status >= 400:
            detail = response.read(2000).decode(errors="replace").strip()[:300]
            raise self._refused(response.status, detail)
        kind = response.getheader("Content-Type") or "no content type"
        if "text/event-stream" not in kind:
            start = response.read(200).decode(errors="replace").strip()
            raise ServerError(
                f"the server at {self.url} answered with {kind}, not a stream of events: {start!r}; "
                "is this the address of an OpenAI-compatible server (transformers serve, vLLM)?"
            )
        return sock, response

    def _refused(self, status, detail):
        """The ServerError for an HTTP error status: which kind of failure, and what to do about it."""
        if status >= 500:
            return ServerError(
                f"the server at {self.url} failed (HTTP {status}): {detail}; its log says why "
                "(Server.log() for a server chatkit started)"
            )
        refused = f"the server at {self.url} refused the request (HTTP {status}): {detail}; "
        if status in (401, 403):
            given = " (the api_key given was refused)" if self.api_key else ""
            return ServerError(
                refused + f"the server wants an API key/token{given}: pass ServerModel(url, model, api_key=...)"
            )
        if status == 404:
            served = self.served_models()
            return ServerError(
                refused + f"no such model on this server ({self.name_or_path!r} is what was asked "
                f"for): "
                + (f"it serves {', '.join(served)}" if served else "it did not say which it serves (GET /v1/models)")
            )
        return ServerError(refused + f"check the model name ({self.name_or_path!r} is what was asked for)")

    def served_models(self):
        """The model names the server lists at /v1/models ([] when it does not answer that)."""
        try:
            with urllib.request.urlopen(self.url + "/v1/models", timeout=min(self.timeout, 5)) as response:
                return [entry["id"] for entry in json.load(response).get("data", [])]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return []
