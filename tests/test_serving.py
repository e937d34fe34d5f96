"""chatkit.serving against a real `transformers serve` on a loopback port, serving the embedded model."""

import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

import chatkit
from chatkit.serving import ServerError, ServerModel, free_port, request_body, start_server

pytest.importorskip("fastapi", reason="transformers serve needs transformers[serving] (requirements.txt has it)")

MODEL = chatkit.embedded_model_path()
QUESTIONS = ["Hi!", "What is 37 + 48?", "What is the capital of France?", "What should I do in Rome?"]


@pytest.fixture(scope="module")
def server():
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
        assert chatkit.reply(remote, None, chat, max_new_tokens=48) == chatkit.reply(model, tokenizer, chat,
                                                                                     max_new_tokens=48)


def test_streaming_arrives_in_pieces_that_join_to_the_reply(remote):
    chat = [{"role": "user", "content": "What is 37 + 48?"}]
    pieces = list(chatkit.stream_reply(remote, None, chat, max_new_tokens=48))
    assert len(pieces) > 3 and "".join(pieces) == chatkit.reply(remote, None, chat, max_new_tokens=48)


def test_stop_ends_the_stream_early(remote):
    stop, pieces = threading.Event(), []
    for piece in chatkit.stream_reply(remote, None, [{"role": "user", "content": "What is 37 + 48?"}],
                                      stop_event=stop, max_new_tokens=48):
        pieces.append(piece)
        stop.set()
    assert len(pieces) == 1


def test_sixteen_learners_at_once_all_get_their_own_right_reply(remote, local):
    model, tokenizer = local
    chats = [[{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}] for i in range(16)]
    expected = {q: chatkit.reply(model, tokenizer, [{"role": "user", "content": q}], max_new_tokens=48)
                for q in QUESTIONS}
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
        "model": "m", "messages": [], "stream": False, "max_tokens": 9, "temperature": 0.0}
    assert request_body("m", [], True, temperature=0.7, top_p=0.9)["temperature"] == 0.7
    with pytest.raises(ValueError, match="temperature"):
        request_body("m", [], True, temperature=-1)


def test_the_chat_widget_talks_to_the_server(remote, local):
    pytest.importorskip("ipywidgets")
    model, tokenizer = local
    widget = chatkit.ChatWidget(remote, None, system_prompt="", max_new_tokens=48)
    assert widget.send("What is 37 + 48?") and widget.wait(60)
    assert widget.history[-1] == {"role": "assistant", "content": chatkit.reply(
        model, tokenizer, [{"role": "user", "content": "What is 37 + 48?"}], max_new_tokens=48)}


def test_the_chat_widget_shows_a_server_that_is_down_as_one_line():
    pytest.importorskip("ipywidgets")
    widget = chatkit.ChatWidget(ServerModel(f"http://127.0.0.1:{free_port()}", MODEL, timeout=5), None,
                                system_prompt="")
    assert widget.send("Hi!") and widget.wait(30)
    assert "cannot reach the server" in widget.status.value and widget.history == []
    assert widget.input.value == "Hi!"  # the message is back in the box, nothing lost


def test_a_server_that_cannot_start_says_why(tmp_path):
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
        chat, model=MODEL, temperature=0, max_tokens=48)
    assert answer.choices[0].message.content == chatkit.reply(remote, None, chat, max_new_tokens=48)
