from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

from fake_hub import run_against_fake_hub
import chatkit
from chatkit import loading

EMBEDDED_LIMIT_BYTES = 16 * 2**20


def test_embedded_model_ships_inside_the_package_and_is_small():
    folder = Path(chatkit.embedded_model_path())
    assert folder.parent.parent == Path(chatkit.__file__).parent
    files = list(folder.parent.rglob("*"))
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {f.name for f in files}
    assert sum(f.stat().st_size for f in files if f.is_file()) <= EMBEDDED_LIMIT_BYTES


def test_embedded_model_loads_with_from_pretrained_and_pipeline_offline():
    path = chatkit.embedded_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    assert model.config.vocab_size >= len(tokenizer)
    pipe = pipeline("text-generation", path)
    chat = [{"role": "user", "content": "Hello!"}]
    result = pipe(chat, max_new_tokens=5)
    assert result[0]["generated_text"][:1] == chat
    assert result[0]["generated_text"][-1]["role"] == "assistant"


def test_load_model_uses_safe_defaults():
    model, tokenizer = chatkit.load_model(chatkit.embedded_model_path())
    assert not model.training
    assert model.dtype == torch.float32  # dtype="auto": the checkpoint's own dtype
    assert tokenizer.eos_token is not None
    model, _ = chatkit.load_model(chatkit.embedded_model_path(), dtype=torch.bfloat16)
    assert model.dtype == torch.bfloat16


def test_default_model_prefers_env_var_then_embedded_offline(monkeypatch):
    monkeypatch.setenv("CHATKIT_MODEL", "someone/some-model")
    assert chatkit.default_model() == "someone/some-model"
    monkeypatch.delenv("CHATKIT_MODEL")
    assert chatkit.default_model() == chatkit.embedded_model_path()  # conftest sets HF_HUB_OFFLINE=1


def test_default_model_is_the_hub_default_when_the_hub_answers(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(loading, "_can_connect", lambda host, port, timeout: True)
    assert chatkit.default_model() == chatkit.DEFAULT_HUB_MODEL
    monkeypatch.setattr(loading, "_can_connect", lambda host, port, timeout: False)
    assert chatkit.default_model() == chatkit.embedded_model_path()


def test_hub_reachable_is_false_offline_and_fails_fast_on_a_closed_port(monkeypatch):
    assert not chatkit.hub_reachable()
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    import socket

    with socket.socket() as s:  # a port that was free a moment ago: connections are refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert not loading._can_connect("127.0.0.1", port, 1.0)


def test_describe_model_hides_machine_paths():
    assert chatkit.describe_model(chatkit.embedded_model_path()) == "chatkit's embedded model (offline)"
    assert chatkit.describe_model("owner/name") == "owner/name"


def test_offline_and_not_cached_says_so_and_names_the_embedded_model(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache
    with pytest.raises(chatkit.ModelLoadError, match="not in the local cache") as info:
        chatkit.load_model("HuggingFaceTB/SmolLM2-360M-Instruct")
    assert "chatkit.embedded_model_path()" in str(info.value)
    assert isinstance(info.value, OSError)  # existing `except OSError` handlers still work
    assert "Hub cannot be reached" in chatkit.check_access("meta-llama/Meta-Llama-3-8B-Instruct")


def test_a_missing_local_folder_is_not_reported_as_a_hub_problem(tmp_path):
    with pytest.raises(OSError) as info:
        chatkit.load_model(str(tmp_path / "no-model-here"))
    assert "gated" not in str(info.value)


def test_hf_token_reads_the_environment_and_never_prompts(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "  hf_example  ")
    assert chatkit.hf_token() == "hf_example"
    monkeypatch.delenv("HF_TOKEN")
    assert chatkit.hf_token() is None


def test_gated_and_unknown_repos_get_helpful_messages_from_real_hub_errors(tmp_path):
    """Real huggingface_hub error handling, against a local server that answers like the Hub."""
    code = (
        "import chatkit\n"
        "for name in ['acme/gated-model', 'acme/no-such-model']:\n"
        "    try:\n"
        "        chatkit.load_model(name)\n"
        "    except chatkit.ModelLoadError as error:\n"
        "        print('LOAD', error)\n"
        "    print('CHECK', chatkit.check_access(name))\n"
    )
    result = run_against_fake_hub(code, tmp_path)  # 401 GatedRepo for names with "gated", else 404
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 4
    for line in lines[:2]:
        assert "'acme/gated-model' is a gated model" in line
        assert "HF_TOKEN" in line and "Colab" in line and "request access" in line
    for line in lines[2:]:
        assert "'acme/no-such-model' was not found on the Hugging Face Hub" in line
