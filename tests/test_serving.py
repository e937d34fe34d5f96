"""chatkit.serving against a real `transformers serve` on a loopback port, serving the embedded model,
and against a tiny fake server (http.server in a thread, loopback only) that gives each broken answer."""

import http.server
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import chatkit
from chatkit import serving
from chatkit.serving import ServerError, ServerModel, free_port, request_body, start_server

MODEL = chatkit.embedded_model_path()
QUESTIONS = ["Hi!", "What is 37 + 48?", "What is the capital of France?", "What should I do in Rome?"]
NEEDS_SERVE = "transformers serve needs transformers[serving] (requirements.txt has it)"


@pytest.fixture(scope="module")
def server():
    pytest.importorskip("fastapi", reason=NEEDS_SERVE)
    with start_server(MODEL) as running:
        yield running


@pytest.fixture(scope="module")
def local():
    return chatkit.load_model(MODEL, device_map=None)


@pytest.fixture(scope="module")
def remote(server):
    return ServerModel(server.url, MODEL, timeout=60)


def test_the_server_listens_on_loopback_only(server):
    assert server.url.startswith("http://127.0.0.1:")


def test_greedy_replies_from_the_server_equal_the_local_model(remote, local):
    model, tokenizer = local
    for question in QUESTIONS:
        chat = [{"role": "user", "content": question}]
        assert chatkit.reply(remote, None, chat, max_new_tokens=48) == chatkit.reply(
            model, tokenizer, chat, max_new_tokens=48
        )


def test_streaming_arrives_in_pieces_that_join_to_the_reply(remote):
    chat = [{"role": "user", "content": "What is 37 + 48?"}]
    pieces = list(chatkit.stream_reply(remote, None, chat, max_new_tokens=48))
    assert len(pieces) > 3 and "".join(pieces) == chatkit.reply(remote, None, chat, max_new_tokens=48)


def test_stop_ends_the_stream_early(remote):
    stop, pieces = threading.Event(), []
    for piece in chatkit.stream_reply(
        remote, None, [{"role": "user", "content": "What is 37 + 48?"}], stop_event=stop, max_new_tokens=48
    ):
        pieces.append(piece)
        stop.set()
    assert len(pieces) == 1


def test_sixteen_learners_at_once_all_get_their_own_right_reply(remote, local):
    model, tokenizer = local
    chats = [[{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}] for i in range(16)]
    expected = {
        q: chatkit.reply(model, tokenizer, [{"role": "user", "content": q}], max_new_tokens=48) for q in QUESTIONS
    }
    with ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(lambda chat: chatkit.reply(remote, None, chat, max_new_tokens=48), chats))
    assert replies == [expected[chat[0]["content"]] for chat in chats]


def test_the_openai_client_gets_the_same_reply(server, remote):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="not-needed")
    chat = [{"role": "user", "content": "What is the capital of France?"}]
    answer = client.chat.completions.create(model=MODEL, messages=chat, temperature=0, max_tokens=48)
    assert answer.choices[0].message.content == chatkit.reply(remote, None, chat, max_new_tokens=48)


def test_a_wrong_model_name_is_one_clear_line(server):
    with pytest.raises(ServerError, match=r"refused the request \(HTTP 4\d\d\).*'no/such-model' is what was asked"):
        chatkit.reply(ServerModel(server.url, "no/such-model"), None, [{"role": "user", "content": "Hi!"}])


def test_a_server_that_is_down_is_one_clear_line():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServerError, match="cannot reach the server at .*: is it running"):
        chatkit.reply(ServerModel(url, MODEL, timeout=5), None, [{"role": "user", "content": "Hi!"}])


def test_a_server_that_does_not_answer_times_out_with_one_clear_line():
    with socket.socket() as silent:  # accepts the connection, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(ServerError, match="did not answer within 1 s"):
            chatkit.reply(ServerModel(url, MODEL, timeout=1), None, [{"role": "user", "content": "Hi!"}])


@pytest.mark.parametrize("url", ["127.0.0.1:8000", "", None])
def test_a_url_without_a_scheme_is_rejected_at_once(url):
    with pytest.raises(ValueError, match="must start with http://"):
        ServerModel(url, MODEL)


def test_settings_become_the_apis_fields():
    assert request_body("m", [], False, max_new_tokens=9) == {
        "model": "m",
        "messages": [],
        "stream": False,
        "max_tokens": 9,
        "temperature": 0.0,
    }
    assert request_body("m", [], True, temperature=0.7, top_p=0.9)["temperature"] == 0.7
    with pytest.raises(ValueError, match="temperature"):
        request_body("m", [], True, temperature=-1)


def test_the_thinking_switch_travels_as_chat_template_kwargs():
    # transformers serve (and vLLM) pass a request's chat_template_kwargs to the chat template
    body = request_body("m", [], True, max_new_tokens=9, enable_thinking=True)
    assert body["chat_template_kwargs"] == {"enable_thinking": True}
    assert request_body("m", [], True, enable_thinking=False)["chat_template_kwargs"] == {"enable_thinking": False}
    assert "chat_template_kwargs" not in request_body("m", [], True)  # not given: the server's default


def test_the_chat_widget_talks_to_the_server(remote, local):
    pytest.importorskip("ipywidgets")
    model, tokenizer = local
    widget = chatkit.ChatWidget(remote, None, system_prompt="", max_new_tokens=48)
    assert widget.send("What is 37 + 48?") and widget.wait(60)
    assert widget.history[-1] == {
        "role": "assistant",
        "content": chatkit.reply(
            model, tokenizer, [{"role": "user", "content": "What is 37 + 48?"}], max_new_tokens=48
        ),
    }


def test_the_chat_widget_shows_a_server_that_is_down_as_one_line():
    pytest.importorskip("ipywidgets")
    widget = chatkit.ChatWidget(
        ServerModel(f"http://127.0.0.1:{free_port()}", MODEL, timeout=5), None, system_prompt=""
    )
    assert widget.send("Hi!") and widget.wait(30)
    assert "cannot reach the server" in widget.status.value and widget.history == []
    assert widget.input.value == "Hi!"  # the message is back in the box, nothing lost


def test_a_server_that_cannot_start_says_why(tmp_path):
    pytest.importorskip("fastapi", reason=NEEDS_SERVE)
    with pytest.raises(ServerError, match="transformers serve stopped") as caught:
        start_server(tmp_path / "no-model-here", timeout=120)
    assert "no-model-here" in str(caught.value)


def test_huggingface_hubs_client_gets_the_same_reply(server, remote, monkeypatch):
    """InferenceClient refuses every request under HF_HUB_OFFLINE=1, loopback included: lifted for this test."""
    import huggingface_hub
    from huggingface_hub import constants as hub_constants

    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)  # what is_offline_mode() reads on each request
    chat = [{"role": "user", "content": "What is 37 + 48?"}]
    answer = huggingface_hub.InferenceClient(base_url=server.url).chat_completion(
        chat, model=MODEL, temperature=0, max_tokens=48
    )
    assert answer.choices[0].message.content == chatkit.reply(remote, None, chat, max_new_tokens=48)


# ------------------------------------------------ hostile answers, from a fake server on loopback
def chunk(text=None, finish=None, **delta):
    if text is not None:
        delta["content"] = text
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


DONE = chunk(finish="stop")
HI = [{"role": "user", "content": "Hi!"}]


class FakeHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.server.requests.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.server.answer(self)

    def do_GET(self):  # /v1/models, as an OpenAI-compatible server lists what it serves
        self.reply(200, "application/json", json.dumps({"data": [{"id": "served/model"}]}))

    def reply(self, status, kind, text=""):
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.end_headers()
        self.wfile.write(text.encode())

    def events(self, *events):
        self.reply(200, "text/event-stream")
        for event in events:
            self.wfile.write(f"data: {event if isinstance(event, str) else json.dumps(event)}\n\n".encode())
            self.wfile.flush()

    def log_message(self, *args):
        pass


@pytest.fixture
def fake():
    """fake(answer) -> (server, url): a server on 127.0.0.1 whose answer(handler) writes each response."""
    servers, release = [], threading.Event()  # release: silent answers stop waiting at the end of the test

    def start(answer):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeHandler)
        server.answer, server.requests, server.release = answer, [], release
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        servers.append(server)
        return server, f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    release.set()
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_fake_server_streams_a_reply_like_transformers_serve(fake):
    # transformers serve ends with a finish_reason and sends no [DONE]; OpenAI sends both
    for ending in ([DONE], [DONE, "[DONE]"], [chunk(" there"), "[DONE]"]):
        _, url = fake(lambda h: h.events(chunk(role="assistant"), chunk("Hello"), *ending))
        assert chatkit.reply(ServerModel(url, "m"), None, HI).startswith("Hello")


def test_a_prefilled_assistant_message_is_refused_not_ignored(fake):
    server, url = fake(lambda h: h.events(chunk("Hello"), DONE))
    prefilled = HI + [{"role": "assistant", "content": "The capital is"}]
    with pytest.raises(ValueError, match="ends with an assistant message.*cannot: it always starts a new reply"):
        chatkit.reply(ServerModel(url, "m"), None, prefilled)
    with pytest.raises(ValueError, match="prefill with a local model"):
        next(chatkit.stream_reply(ServerModel(url, "m"), None, prefilled))
    assert server.requests == []


def test_tools_and_sampling_settings_reach_the_server(fake):
    from chatkit.tools import multiply

    server, url = fake(lambda h: h.events(chunk("ok"), DONE))
    remote = ServerModel(url, "m")
    chatkit.reply(remote, None, HI, tools=[multiply], temperature=0.7, top_k=5, repetition_penalty=1.2)
    body = server.requests[-1]
    assert body["tools"][0]["function"]["name"] == "multiply" and body["temperature"] == 0.7
    assert json.loads(body["generation_config"]) == {"do_sample": True, "top_k": 5, "repetition_penalty": 1.2}
    list(chatkit.stream_reply(remote, None, HI, tools=[{"name": "f", "parameters": {}}], repetition_penalty=1.1))
    body = server.requests[-1]
    assert body["tools"] == [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    assert json.loads(body["generation_config"]) == {"do_sample": False, "repetition_penalty": 1.1}
    with pytest.raises(ValueError, match="a server cannot be sent min_new_tokens"):
        chatkit.reply(remote, None, HI, min_new_tokens=5)


def test_tool_calls_the_server_parsed_come_back_as_text_parse_reply_reads(fake):
    from chatkit.tools import parse_reply

    pieces = [
        chunk(tool_calls=[{"index": 0, "type": "function", "function": {"name": "multiply", "arguments": ""}}]),
        chunk(tool_calls=[{"index": 0, "function": {"arguments": '{"a": 12, '}}]),
        chunk(tool_calls=[{"index": 0, "function": {"arguments": '"b": 7}'}}]),
        chunk(finish="tool_calls"),
    ]
    _, url = fake(lambda h: h.events(*pieces))
    text = chatkit.reply(ServerModel(url, "m"), None, HI, tools=[{"name": "multiply"}])
    assert parse_reply(None, text)["tool_calls"] == [
        {"type": "function", "function": {"name": "multiply", "arguments": {"a": 12, "b": 7}}}
    ]


@pytest.mark.parametrize(
    "answer, words",
    [
        (
            lambda h: h.events(chunk("Hel"), {"error": "CUDA out of memory"}),
            "failed while replying: CUDA out of memory; its log says more",
        ),
        (
            lambda h: h.events(chunk("Hel"), {"error": {"message": "boom", "type": "server_error"}}),
            "failed while replying: boom",
        ),
        (lambda h: h.events(chunk("Hel"), "{not json"), "sent an event that is not JSON"),
        (
            lambda h: h.reply(200, "text/html", "<html><body>Welcome to nginx!</body></html>"),
            "answered with text/html, not a stream of events: '<html><body>Welcome to nginx!",
        ),
        (
            lambda h: h.events(chunk("Hello, how"), chunk(" are")),
            "was cut short: the stream ended before the server said",
        ),
        (lambda h: h.events(), "was cut short"),
        (lambda h: h.reply(401, "application/json", '{"error": "unauthorized"}'), r"HTTP 401.*wants an API key/token"),
        (lambda h: h.reply(403, "application/json", '{"error": "forbidden"}'), r"HTTP 403.*wants an API key/token"),
        (
            lambda h: h.reply(404, "application/json", '{"detail": "Not Found"}'),
            r"HTTP 404.*no such model on this server \('m' is what was asked for\): it serves served/model",
        ),
        (
            lambda h: h.reply(500, "text/plain", "Internal Server Error"),
            r"failed \(HTTP 500\): Internal Server Error; its log says why",
        ),
        (lambda h: h.reply(503, "application/json", '{"error": "cb_worker_dead"}'), r"failed \(HTTP 503\)"),
        (
            lambda h: h.reply(400, "application/json", '{"detail": "pinned"}'),
            r"refused the request \(HTTP 400\).*check the model name \('m' is what was asked for\)",
        ),
    ],
    ids=[
        "error-event",
        "openai-error-event",
        "not-json",
        "html-200",
        "cut-short",
        "empty-stream",
        "401",
        "403",
        "404",
        "500",
        "503",
        "400",
    ],
)
def test_each_broken_answer_is_one_serverError_that_says_which(fake, answer, words):
    _, url = fake(answer)
    with pytest.raises(ServerError, match=words) as caught:
        chatkit.reply(ServerModel(url, "m"), None, HI)
    assert "check the model name" not in str(caught.value) or "HTTP 400" in str(caught.value)
    with pytest.raises(ServerError, match=words):
        list(chatkit.stream_reply(ServerModel(url, "m"), None, HI))


def test_an_api_key_that_is_refused_says_so(fake):
    server, url = fake(lambda h: h.reply(401, "application/json", "{}"))
    with pytest.raises(ServerError, match=r"wants an API key/token \(the api_key given was refused\)"):
        chatkit.reply(ServerModel(url, "m", api_key="wrong"), None, HI)


def _silent_after(*events):
    """An answer that sends `events`, then says nothing until the test ends."""

    def answer(handler):
        handler.events(*events)
        handler.server.release.wait(60)

    return answer


@pytest.mark.parametrize("events", [(chunk("Hel"),), ()], ids=["mid-reply", "before-any-text"])
def test_stop_is_immediate_while_the_server_is_silent(fake, events):
    _, url = fake(_silent_after(*events))
    stop, pieces = threading.Event(), []
    threading.Timer(0.3, stop.set).start()
    start = time.perf_counter()
    for piece in chatkit.stream_reply(ServerModel(url, "m", timeout=60), None, HI, stop_event=stop):
        pieces.append(piece)
    assert time.perf_counter() - start < 3  # was: only after the server's next byte, or the 60 s timeout
    assert pieces == [e["choices"][0]["delta"]["content"] for e in events]


def test_a_server_silent_mid_reply_times_out_with_one_clear_line(fake):
    _, url = fake(_silent_after(chunk("Hel")))
    with pytest.raises(ServerError, match="stopped answering for 1 s"):
        chatkit.reply(ServerModel(url, "m", timeout=1), None, HI)


@pytest.mark.parametrize("timeout", [-1, 0, float("nan"), float("inf"), True, "5", None])
def test_a_timeout_that_is_not_a_positive_number_is_refused_at_once(timeout):
    # was: timeout=-1 gave a raw socket error on the first request
    with pytest.raises(ValueError, match="timeout must be a positive number of seconds"):
        ServerModel("http://127.0.0.1:8000", MODEL, timeout=timeout)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "example.org", "::"])
def test_start_server_refuses_the_network_unless_asked(host, monkeypatch):
    def no_process(*args, **kwargs):
        raise AssertionError("no server may be started")

    monkeypatch.setattr(serving.subprocess, "Popen", no_process)
    with pytest.raises(ValueError, match=f"host={host!r} opens the model to the network.*allow_network=True"):
        start_server(MODEL, port=8000, host=host)


def test_allow_network_says_what_anyone_there_can_do_and_shows_the_command(monkeypatch, capsys):
    started = []

    class NotStarted(Exception):
        pass

    def fake_popen(command, **kwargs):  # nothing is bound: the test stops before a process starts
        started.append(command)
        raise NotStarted

    monkeypatch.setattr(serving.subprocess, "Popen", fake_popen)
    with pytest.raises(NotStarted):
        start_server(MODEL, port=8000, host="0.0.0.0", allow_network=True)
    warning = capsys.readouterr().out
    assert "http://0.0.0.0:8000 has no API key: anyone who can reach port 8000" in warning
    assert "any prompt" in warning and "server.stop()" in warning
    assert started == [serving.serve_command(MODEL, 8000, "0.0.0.0")]
    assert started[0][-5:] == [str(MODEL), "--host", "0.0.0.0", "--port", "8000"]
    assert [serving.is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "127.0.0.2", "0.0.0.0")] == [
        True,
        True,
        True,
        True,
        False,
    ]


def test_the_server_exposes_the_command_it_runs(server):
    port = server.url.rsplit(":", 1)[1]
    assert server.command == serving.serve_command(MODEL, int(port))
    assert server.command[-4:] == ["--host", "127.0.0.1", "--port", port]


def test_settings_the_api_has_no_field_for_reach_transformers_serve(remote, local):
    """top_k and repetition_penalty travel in transformers serve's generation_config field, and apply."""
    model, tokenizer = local
    chat = [{"role": "user", "content": "What should I do in Rome?"}]
    penalised = chatkit.reply(model, tokenizer, chat, max_new_tokens=48, repetition_penalty=3.0)
    assert penalised != chatkit.reply(model, tokenizer, chat, max_new_tokens=48)
    assert chatkit.reply(remote, None, chat, max_new_tokens=48, repetition_penalty=3.0) == penalised
    # sampling from the single most likely token is greedy decoding: the server did sample with top_k=1
    assert chatkit.reply(remote, None, chat, max_new_tokens=48, temperature=1.5, top_k=1) == chatkit.reply(
        model, tokenizer, chat, max_new_tokens=48
    )


def test_tools_reach_the_server_and_its_tool_call_comes_back(remote, local):
    from chatkit.tools import EMBEDDED_TOOLS, parse_reply

    model, tokenizer = local
    chat = [{"role": "user", "content": "What is 12 times 7?"}]
    here = parse_reply(tokenizer, chatkit.reply(model, tokenizer, chat, tools=EMBEDDED_TOOLS, max_new_tokens=64))
    there = parse_reply(None, chatkit.reply(remote, None, chat, tools=EMBEDDED_TOOLS, max_new_tokens=64))
    assert here.get("tool_calls") and there == here


def test_a_picture_sent_as_an_image_url_gets_the_local_models_answer():
    # the embedded vision-language model behind `transformers serve`; the picture as a data URL (OpenAI's
    # image_url content), as notebook 10 sends it
    import base64
    import io

    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    pytest.importorskip("fastapi", reason=NEEDS_SERVE)
    path = chatkit.embedded_vision_path()
    q = chatkit.picture_questions.held_out_image_questions(3)[2]
    question = q["chat"][0]["content"][-1]["text"]
    buffer = io.BytesIO()
    q["image"].save(buffer, format="PNG")
    data_url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    content = [{"type": "image_url", "image_url": {"url": data_url}}, {"type": "text", "text": question}]
    body = {"model": path, "messages": [{"role": "user", "content": content}], "max_tokens": 48, "temperature": 0}
    with start_server(path) as running:
        served = _post(running.url + "/v1/chat/completions", body)["choices"][0]["message"]["content"]
    processor, model = AutoProcessor.from_pretrained(path), AutoModelForImageTextToText.from_pretrained(path)
    chat = [{"role": "user", "content": [{"type": "image", "image": q["image"]}, {"type": "text", "text": question}]}]
    inputs = processor.apply_chat_template(
        chat, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=48, do_sample=False)
    assert served == processor.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)


def _post(url, body):
    import urllib.request

    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as answer:
        return json.loads(answer.read())
