"""chatkit.hub: which model to use, whether the Hub may be asked, its errors in words, and model facts.

Nothing touches the real network: conftest sets HF_HUB_OFFLINE=1; the online paths run against fakes of
the huggingface_hub calls, or against a local server that answers as the Hub does (tests/fake_hub.py).
"""

import json
import socket
from pathlib import Path

import pytest
from fake_hub import run_against_fake_hub
from helpers import TINY
from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

import chatkit
from chatkit import counting, hub

EMBEDDED_LIMIT_BYTES = 16 * 2**20


# ------------------------------------------------------------------------------ the embedded model
def test_embedded_model_ships_inside_the_package_and_is_small():
    folder = Path(chatkit.embedded_model_path())
    assert folder.parent.parent == Path(chatkit.__file__).parent
    files = [f for f in folder.parent.rglob("*") if f.parent.name != "vision"]  # the chat model and its draft
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {f.name for f in files}
    assert sum(f.stat().st_size for f in files if f.is_file()) <= EMBEDDED_LIMIT_BYTES  # the VLM: test_training


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


# ------------------------------------------------------------------------ which model, which Hub
def test_default_model_prefers_env_var_then_embedded_offline(monkeypatch):
    monkeypatch.setenv("CHATKIT_MODEL", "someone/some-model")
    assert chatkit.default_model() == "someone/some-model"
    monkeypatch.delenv("CHATKIT_MODEL")
    assert chatkit.default_model() == chatkit.embedded_model_path()  # conftest sets HF_HUB_OFFLINE=1


def test_default_model_is_the_hub_default_when_the_hub_answers(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(hub, "_can_connect", lambda host, port, timeout: True)
    assert chatkit.default_model() == chatkit.DEFAULT_HUB_MODEL
    monkeypatch.setattr(hub, "_can_connect", lambda host, port, timeout: False)
    assert chatkit.default_model() == chatkit.embedded_model_path()


def test_hub_reachable_is_false_offline_and_fails_fast_on_a_closed_port(monkeypatch):
    assert not hub.hub_reachable()
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")

    with socket.socket() as s:  # a port that was free a moment ago: connections are refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert not hub._can_connect("127.0.0.1", port, 1.0)


def test_describe_model_hides_machine_paths():
    assert chatkit.describe_model(chatkit.embedded_model_path()) == "chatkit's embedded model (offline)"
    assert chatkit.describe_model("owner/name") == "owner/name"


def test_hf_token_reads_the_environment_and_never_prompts(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "  hf_example  ")
    assert chatkit.hf_token() == "hf_example"
    monkeypatch.delenv("HF_TOKEN")
    assert chatkit.hf_token() is None


# ------------------------------------------------------------------------------ names and errors
@pytest.mark.parametrize("name", ["HuggingFaceTB/SmolLM2-360M-Instruct", "gpt2", "owner/name.v2"])
def test_name_problem_is_none_for_a_valid_hub_id(name):
    assert hub.name_problem(name) is None


def test_name_problem_is_none_for_an_existing_folder(tmp_path):
    assert hub.name_problem(chatkit.embedded_model_path()) is None
    assert hub.name_problem(Path(chatkit.embedded_model_path())) is None  # a Path works too
    assert hub.name_problem(str(tmp_path)) is None


@pytest.mark.parametrize(
    "name,words",
    [
        ("", "The model name is empty"),
        ("   ", "The model name is empty"),
        ("/no/such/folder", "There is no folder '/no/such/folder'"),
        ("./missing-model", "There is no folder './missing-model'"),
        ("a/b/c", "There is no folder 'a/b/c'"),
        ("not a valid id!!", "'not a valid id!!' is not a local folder, and not a valid Hub id"),
        (None, "must be a name or a folder (a string), not NoneType"),
        (42, "not int"),
    ],
)
def test_name_problem_says_what_is_wrong_and_names_a_valid_id(name, words):
    problem = hub.name_problem(name)
    assert problem is not None and words in problem
    assert "'HuggingFaceTB/SmolLM2-360M-Instruct'" in problem
    assert "Repo id must be in the form" not in problem


def test_check_access_offline_says_the_hub_cannot_be_reached():
    assert "Hub cannot be reached" in chatkit.check_access("meta-llama/Meta-Llama-3-8B-Instruct")


def test_hub_error_message_is_none_for_an_error_that_is_not_the_hubs():
    assert hub.hub_error_message("owner/name", ValueError("something else")) is None


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


# ------------------------------------------------------------------------------ facts per model
def test_find_in_catalog_reads_repo_ids_and_bare_names_in_any_case():
    entry = hub.find_in_catalog("meta-llama/meta-llama-3-8b-instruct")
    assert entry.name == "Meta-Llama-3-8B-Instruct"
    assert hub.find_in_catalog("  META-LLAMA-3-8B-INSTRUCT ") is entry
    assert hub.find_in_catalog("acme/unknown-model") is None


def test_model_facts_of_a_folder_reads_its_config(tmp_path):
    facts = hub.model_facts(chatkit.embedded_model_path())
    assert facts.label == "chatkit's embedded model (offline)"
    assert facts.source == "config.json in the model folder" and facts.config["model_type"] == "llama"
    with pytest.raises(LookupError, match="has no config.json"):
        hub.model_facts(str(tmp_path))


@pytest.fixture
def empty_hub_cache(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    return tmp_path


def test_offline_the_catalogue_answers_and_says_why(empty_hub_cache):
    facts = hub.model_facts("mistralai/Mixtral-8x7B-Instruct-v0.1")
    assert facts.source == "chatkit's offline catalogue"
    assert "cannot be reached" in facts.message and "catalogue" in facts.message
    assert facts.params == 46_702_792_704 and facts.active_params == 12.9e9
    assert hub.model_facts("mixtral-8x7b-instruct-v0.1").label == facts.label  # bare name, any case


def test_offline_a_config_in_the_local_hub_cache_is_used(empty_hub_cache):
    snapshot = empty_hub_cache / "models--acme--cached-model" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("abc123")
    (snapshot / "config.json").write_text(json.dumps(TINY["llama"]))
    facts = hub.model_facts("acme/cached-model")
    assert facts.source == "config.json from the local Hugging Face cache"
    assert counting.count_parameters(facts.config).total == counting.count_parameters(TINY["llama"]).total


def test_offline_an_unknown_model_is_a_lookup_error_naming_the_way_out(empty_hub_cache):
    with pytest.raises(LookupError, match="not in chatkit's offline catalogue.*HF_HUB_OFFLINE"):
        hub.model_facts("acme/unknown-model")


def test_online_reads_config_json_and_the_safetensors_count_without_weights(monkeypatch):
    import huggingface_hub
    from huggingface_hub.hf_api import SafeTensorsInfo

    calls = []

    def fake_download(repo_id, filename, **kwargs):
        calls.append((repo_id, filename, kwargs.get("local_files_only")))
        path = Path(chatkit.embedded_model_path()) / "config.json"
        return str(path)

    class FakeInfo:
        safetensors = SafeTensorsInfo(parameters={"BF16": 123}, total=123)

    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=1.5: True)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", lambda self, repo_id, **kw: FakeInfo())
    facts = hub.model_facts("Qwen2.5-0.5B-Instruct")  # a bare catalogue name: resolved to its repo
    assert calls == [("Qwen/Qwen2.5-0.5B-Instruct", "config.json", False)]  # config.json only, no weights
    assert facts.source == "config.json from the Hugging Face Hub"
    assert facts.params == 123 and "safetensors" in facts.params_source
    assert facts.config["model_type"] == "llama"  # what the (fake) Hub returned, not the catalogue


def test_gated_and_unknown_repos_fall_back_to_the_catalogue_with_real_hub_errors(tmp_path):
    """Real huggingface_hub errors, from a local server that answers as the Hub does (tests/fake_hub.py)."""
    code = (
        "from chatkit import hub\n"
        "print('CATALOG', hub.model_facts('meta-llama/Meta-Llama-3-8B-Instruct').message)\n"
        "for name in ['acme/gated-model', 'acme/no-such-model']:\n"
        "    try:\n"
        "        hub.model_facts(name)\n"
        "    except LookupError as error:\n"
        "        print('LOOKUP', error)\n"
    )
    result = run_against_fake_hub(code, tmp_path)  # 401 GatedRepo for names with "gated", else 404
    assert result.returncode == 0, result.stderr
    catalog, gated, unknown = result.stdout.splitlines()
    assert catalog.startswith("CATALOG 'meta-llama/Meta-Llama-3-8B-Instruct' was not found on the Hugging Face Hub")
    assert "using chatkit's offline catalogue" in catalog
    assert "'acme/gated-model' is a gated model" in gated and "HF_TOKEN" in gated
    assert "'acme/no-such-model' was not found on the Hugging Face Hub" in unknown
