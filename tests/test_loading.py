"""chatkit.loading: load_model / load_tokenizer, their checks and errors, and the memory guard."""

import pytest
import torch
from transformers import BitsAndBytesConfig, LlamaConfig

import chatkit
from chatkit import loading, machine


def test_load_model_uses_safe_defaults():
    model, tokenizer = chatkit.load_model(chatkit.embedded_model_path())
    assert not model.training
    assert model.dtype == torch.float32  # dtype="auto": the checkpoint's own dtype
    assert tokenizer.eos_token is not None
    model, _ = chatkit.load_model(chatkit.embedded_model_path(), dtype=torch.bfloat16)
    assert model.dtype == torch.bfloat16


def test_offline_and_not_cached_says_so_and_names_the_embedded_model(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache
    with pytest.raises(chatkit.ModelLoadError, match="not in the local cache") as info:
        chatkit.load_model("HuggingFaceTB/SmolLM2-360M-Instruct")
    assert "chatkit.embedded_model_path()" in str(info.value)
    assert isinstance(info.value, OSError)  # existing `except OSError` handlers still work


def test_a_missing_local_folder_is_not_reported_as_a_hub_problem(tmp_path):
    with pytest.raises(OSError) as info:
        chatkit.load_model(str(tmp_path / "no-model-here"))
    assert "gated" not in str(info.value)


# ------------------------------------------------------------------- names checked before loading
@pytest.mark.parametrize(
    "name,words",
    [
        ("", "The model name is empty"),
        ("/no/such/folder", "There is no folder '/no/such/folder'"),
        ("./missing-model", "There is no folder './missing-model'"),
        ("not a valid id!!", "not a valid Hub id"),
    ],
)
def test_a_bad_name_gets_chatkits_message_not_huggingface_hubs(name, words):
    with pytest.raises(chatkit.ModelLoadError) as info:
        chatkit.load_model(name)
    message = str(info.value)
    assert words in message
    assert "Repo id must be in the form" not in message
    assert "'HuggingFaceTB/SmolLM2-360M-Instruct'" in message  # names a model that works


def test_load_tokenizer_checks_the_name_too():
    with pytest.raises(chatkit.ModelLoadError) as info:
        chatkit.load_tokenizer("")
    assert "The model name is empty" in str(info.value)
    assert "Repo id must be in the form" not in str(info.value)
    assert chatkit.load_tokenizer(chatkit.embedded_model_path()).eos_token is not None


# ------------------------------------------------------------------------------ the memory guard
def test_guard_refuses_with_the_smaller_options_and_the_override_works(model_dir):
    fp32 = loading.loading_estimate(model_dir, torch.float32)
    nf4 = loading.loading_estimate(model_dir, "bf16", {"load_in_4bit": True, "bnb_4bit_use_double_quant": True})
    available = (fp32.total + nf4.total) // 2  # room for 4-bit, not for fp32
    with pytest.raises(loading.NotEnoughMemoryError) as info:
        loading.check_fits(model_dir, torch.float32, available_bytes=available)
    message = str(info.value)
    for option in ("- bf16:", "- int8:", "- 4bit:", "a smaller model", "allow_oversize=True"):
        assert option in message
    assert "4bit: about" in message and message.count("(fits)") >= 1
    assert loading.check_fits(model_dir, torch.float32, available_bytes=available, allow_oversize=True) == fp32
    assert loading.check_fits(model_dir, torch.float32, available_bytes=fp32.total) == fp32


def test_guard_only_names_options_smaller_than_the_one_asked_for(model_dir):
    with pytest.raises(loading.NotEnoughMemoryError) as info:
        loading.check_fits(model_dir, "bf16", BitsAndBytesConfig(load_in_8bit=True), available_bytes=1000)
    message = str(info.value)
    assert "in int8 needs" in message and "- 4bit:" in message and "- bf16:" not in message


def test_guard_names_a_config_without_printing_it(model_dir):
    config = LlamaConfig.from_pretrained(model_dir)
    with pytest.raises(loading.NotEnoughMemoryError) as info:
        loading.check_fits(config, torch.float16, available_bytes=1000)
    message = str(info.value)
    assert message.startswith("Loading ") and "in fp16 needs" in message and "vocab_size" not in message
    assert "- bf16:" not in message and "- int8:" in message  # bf16 is no smaller than fp16


def test_load_model_is_guarded_and_can_be_overridden(model_dir, monkeypatch):
    monkeypatch.setattr(loading, "machine_memory", lambda device=None: machine.MachineMemory("cpu", 10**6, 10**5))
    with pytest.raises(loading.NotEnoughMemoryError, match="system RAM: 97.7 KiB available"):
        chatkit.load_model(model_dir)
    model, _ = chatkit.load_model(model_dir, allow_oversize=True)
    assert model.dtype == torch.float32


def test_a_load_reads_the_config_once_and_estimates_its_memory_once(model_dir, monkeypatch):
    import sys

    from transformers import AutoConfig

    from chatkit import counting

    estimated, read_by_chatkit = [], []
    estimate_memory, from_pretrained = loading.estimate_memory, AutoConfig.from_pretrained.__func__

    def counted_estimate(model, *args, **kwargs):
        estimated.append(model)
        return estimate_memory(model, *args, **kwargs)

    def counted_from_pretrained(cls, name, *args, **kwargs):
        if sys._getframe(1).f_globals["__name__"].startswith("chatkit"):  # chatkit's reads, not transformers' own
            read_by_chatkit.append(name)
        return from_pretrained(cls, name, *args, **kwargs)

    def looked_up_again(name):
        raise AssertionError(f"{name!r} was resolved again past load_model's door")

    monkeypatch.setattr(loading, "estimate_memory", counted_estimate)
    monkeypatch.setattr(AutoConfig, "from_pretrained", classmethod(counted_from_pretrained))
    monkeypatch.setattr(counting, "model_facts", looked_up_again)  # the name never travels below loading
    chatkit.load_model(model_dir, device_map=None)
    assert read_by_chatkit == [model_dir]
    assert len(estimated) == 1 and not isinstance(estimated[0], str)  # one estimate, of the config read once


def test_a_refusal_judges_the_one_estimate_and_sizes_only_the_smaller_options(model_dir, monkeypatch):
    estimated = []
    estimate_memory = loading.estimate_memory
    monkeypatch.setattr(
        loading,
        "estimate_memory",
        lambda model, dtype, **kw: estimated.append(dtype) or estimate_memory(model, dtype, **kw),
    )
    monkeypatch.setattr(loading, "machine_memory", lambda device=None: machine.MachineMemory("cpu", 10**6, 10**5))
    with pytest.raises(loading.NotEnoughMemoryError):
        chatkit.load_model(model_dir, device_map=None)
    assert estimated == ["fp32", "bf16", "int8", "4bit"]  # the load's own, then one per smaller option


def test_guard_skips_what_it_cannot_size(model_dir):
    config = LlamaConfig.from_pretrained(model_dir)
    assert loading.guard_loading(model_dir, config, quantization_config={"quant_method": "gptq"}) is None
    assert loading.guard_loading(model_dir, config, allow_oversize=True) is None
    assert loading.guard_loading(model_dir, config).dtype == "fp32"
    config.quantization_config = {"quant_method": "awq", "bits": 4}  # a checkpoint saved quantized
    assert loading.guard_loading(model_dir, config) is None
    config.quantization_config = {"quant_method": "bitsandbytes", "load_in_4bit": True}
    assert loading.guard_loading(model_dir, config).dtype == "4bit"


# ------------------------------------------- broken folders and files: one ModelLoadError each, never random weights
@pytest.fixture
def copy_of_the_embedded_model(tmp_path):
    """copy(name, without=()) -> a folder holding the embedded model's files (but those left out)."""
    import shutil
    from pathlib import Path

    def copy(name, without=()):
        folder = tmp_path / name
        folder.mkdir()
        for file in Path(chatkit.embedded_model_path()).iterdir():
            if file.name not in without:
                shutil.copy(file, folder / file.name)
        return folder

    return copy


def _state_dict():
    from safetensors.torch import load_file

    return load_file(f"{chatkit.embedded_model_path()}/model.safetensors")


def test_a_pickle_only_folder_says_safetensors_is_the_default_and_how_to_go_on(copy_of_the_embedded_model):
    folder = copy_of_the_embedded_model("bin-only", without=("model.safetensors",))
    torch.save(_state_dict(), folder / "pytorch_model.bin")
    with pytest.raises(chatkit.ModelLoadError) as info:  # was: "Error no file named model.safetensors found"
        chatkit.load_model(str(folder), device_map=None)
    message = str(info.value)
    assert "chatkit loads safetensors only, the safe default" in message and "pickle" in message
    assert "model.save_pretrained(folder)" in message and "use_safetensors=False if you trust the file" in message
    model, _ = chatkit.load_model(str(folder), device_map=None, use_safetensors=False)  # trusted: it loads
    assert torch.equal(model.model.embed_tokens.weight, _state_dict()["model.embed_tokens.weight"])


def test_a_checkpoint_without_the_weights_is_refused_not_filled_with_random_numbers(copy_of_the_embedded_model):
    folder = copy_of_the_embedded_model("broken-bin", without=("model.safetensors",))
    torch.save({"nothing": torch.zeros(1)}, folder / "pytorch_model.bin")
    with pytest.raises(
        chatkit.ModelLoadError,  # was: a model with random weights, and a log line
        match=r"do not match its architecture: \d+ weights are missing from the checkpoint",
    ):
        chatkit.load_model(str(folder), device_map=None, use_safetensors=False)


def test_weights_of_the_wrong_shape_are_refused(copy_of_the_embedded_model):
    from safetensors.torch import save_file

    folder = copy_of_the_embedded_model("wrong-shape")
    weights = _state_dict()
    weights["model.layers.0.mlp.up_proj.weight"] = torch.zeros(10, 192)
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(chatkit.ModelLoadError, match="another shape than config.json says"):
        chatkit.load_model(str(folder), device_map=None)
    model, _ = chatkit.load_model(str(folder), device_map=None, ignore_mismatched_sizes=True)  # asked for
    assert model.model.layers[0].mlp.up_proj.weight.shape == (512, 192)


def test_nonsense_numbers_passed_to_load_model_are_refused(model_dir):
    with pytest.raises(chatkit.ModelLoadError, match=r"num_hidden_layers=-2: it must be a whole number ≥ 1"):
        chatkit.load_model(model_dir, device_map=None, num_hidden_layers=-2)  # was: a 0-layer model
    model, _ = chatkit.load_model(model_dir, device_map=None, num_hidden_layers=2)  # a sensible override loads
    assert model.config.num_hidden_layers == 2 and len(model.model.layers) == 2


def test_a_path_to_a_file_names_the_folder_to_pass_instead():
    config = f"{chatkit.embedded_model_path()}/config.json"
    for load in (chatkit.load_model, chatkit.load_tokenizer):
        with pytest.raises(chatkit.ModelLoadError) as info:  # was: "There is no folder ..."
            load(config)
        assert f"{config!r} is a file; pass the folder" in str(info.value)
        assert repr(chatkit.embedded_model_path()) in str(info.value)


def test_an_empty_folder_says_it_is_empty(tmp_path):
    for load in (chatkit.load_model, chatkit.load_tokenizer):  # was: "... install sentencepiece ..."
        with pytest.raises(chatkit.ModelLoadError, match="is empty: no model was saved there"):
            load(str(tmp_path))


def test_a_folder_without_config_json_says_so(copy_of_the_embedded_model):
    folder = copy_of_the_embedded_model("no-config", without=("config.json",))
    with pytest.raises(chatkit.ModelLoadError, match="has no config.json, so it is not a saved model"):
        chatkit.load_model(str(folder))


def test_a_corrupt_config_json_is_one_clear_error(copy_of_the_embedded_model):
    folder = copy_of_the_embedded_model("bad-config")
    (folder / "config.json").write_text('{"model_type": "llama",')
    for load in (chatkit.load_model, chatkit.load_tokenizer):  # was: a raw OSError from transformers
        with pytest.raises(chatkit.ModelLoadError, match=r"config.json' is not valid JSON \(.*line 1"):
            load(str(folder))


@pytest.mark.parametrize("keep", [0.5, 5 / 8_000_000], ids=["half", "five-bytes"])
def test_a_truncated_safetensors_file_is_one_clear_error(copy_of_the_embedded_model, keep):
    folder = copy_of_the_embedded_model("truncated")
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: max(5, int(len(data) * keep))])
    with pytest.raises(
        chatkit.ModelLoadError,
        match=r"\.safetensors\) of .* is damaged \(.*\): it was probably cut "
        r"short.*Download it again",
    ):  # was: a raw SafetensorError
        chatkit.load_model(str(folder), device_map=None)
