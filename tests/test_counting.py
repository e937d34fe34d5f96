"""chatkit.counting: parameter counts from a name and from a config, against published numbers.

The catalogue's counts are checked against what each model's authors publish; the meta-device count
against a closed-form formula and against a loaded model.
"""

import pytest
from helpers import TINY
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoModelForCausalLM

import chatkit
from chatkit import counting, sizing
from chatkit.catalog import CATALOG

TOLERANCE_PUBLISHED = 0.005  # the issue's bar: within 0.5% of the published count


# ------------------------------------------------------------------------- catalogue vs published
@pytest.mark.parametrize("repo_id", sorted(CATALOG))
def test_count_matches_the_published_count_of_every_catalogue_entry(repo_id):
    entry = CATALOG[repo_id]
    counted = counting.count_parameters(entry)
    assert abs(counted.total - entry.params) / entry.params <= TOLERANCE_PUBLISHED
    if entry.active_params is not None:
        assert counted.is_moe
        assert abs(counted.active - entry.active_params) / entry.active_params <= TOLERANCE_PUBLISHED
    else:
        assert counted.active == counted.total
    assert entry.params_source and entry.licence
    assert entry.config_source.startswith("https://huggingface.co/")


def test_catalogue_holds_the_models_the_course_names():
    names = {entry.name for entry in CATALOG.values()}
    assert {
        "Meta-Llama-3-8B-Instruct",
        "Llama-3.1-70B-Instruct",
        "Mistral-7B-Instruct-v0.3",
        "Mixtral-8x7B-Instruct-v0.1",
        "Mixtral-8x22B-Instruct-v0.1",
        "zephyr-orpo-141b-A35b-v0.1",
        "Qwen2.5-0.5B-Instruct",
        "Qwen2.5-7B-Instruct",
        "SmolLM2-360M-Instruct",
        "SmolLM2-1.7B-Instruct",
        "gemma-2-2b-it",
        "Phi-3-mini-4k-instruct",
    } <= names


def test_mixtral_is_not_8_times_7b_because_attention_and_embeddings_are_shared():
    mixtral = counting.count_parameters(CATALOG["mistralai/Mixtral-8x7B-Instruct-v0.1"])
    mistral = counting.count_parameters(CATALOG["mistralai/Mistral-7B-Instruct-v0.3"])
    # Mixtral-8x7B has Mistral-7B's shape (vocab 32000 vs 32768) with its MLP copied 8 times.
    shared = mixtral.total - mixtral.experts
    assert mixtral.experts == 8 * 32 * 3 * 4096 * 14336
    assert mixtral.total == shared + mixtral.experts < 8 * mistral.total
    assert mixtral.active == shared + mixtral.experts // 4
    assert counting.parse_model_size("Mixtral-8x7B").total == 56 * 10**9


def test_zephyr_name_says_a35b_but_its_architecture_uses_39b_per_token():
    zephyr = CATALOG["HuggingFaceH4/zephyr-orpo-141b-A35b-v0.1"]
    named = counting.parse_model_size(zephyr.repo_id)
    counted = counting.count_parameters(zephyr)
    assert named.total == 141 * 10**9 and named.active == 35 * 10**9
    assert round(counted.active / 1e9) == 39 == zephyr.active_params / 1e9


def test_embedded_model_count_matches_the_loaded_model():
    path = chatkit.embedded_model_path()
    counted = counting.count_parameters(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    assert counted.total == sum(p.numel() for p in model.parameters())
    assert sizing.estimate_memory(path, "fp32", context_length=0).weights == model.get_memory_footprint()


# ---------------------------------------------------------------- against a closed-form formula
@settings(max_examples=25, deadline=None)
@given(
    layers=st.integers(1, 4),
    heads=st.sampled_from([1, 2, 4, 8]),
    head_dim=st.sampled_from([8, 16]),
    groups=st.sampled_from([1, 2, 4]),
    intermediate=st.integers(1, 300),
    vocab=st.integers(10, 2000),
    tied=st.booleans(),
)
def test_meta_device_count_equals_the_llama_formula(layers, heads, head_dim, groups, intermediate, vocab, tied):
    kv_heads = max(1, heads // groups)
    hidden = heads * head_dim
    config = dict(
        model_type="llama",
        num_hidden_layers=layers,
        hidden_size=hidden,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        intermediate_size=intermediate,
        vocab_size=vocab,
        tie_word_embeddings=tied,
    )
    attention = 2 * hidden * hidden + 2 * hidden * kv_heads * head_dim
    per_layer = attention + 3 * hidden * intermediate + 2 * hidden
    expected = layers * per_layer + hidden + vocab * hidden * (1 if tied else 2)
    counted = counting.count_parameters(config)
    assert counted.total == counted.active == expected
    assert counted.quantizable == layers * (attention + 3 * hidden * intermediate)


# ---------------------------------------------------------------------------------- from the name
@pytest.mark.parametrize(
    "name,total,active",
    [
        ("Meta-Llama-3-8B-Instruct", 8 * 10**9, 8 * 10**9),
        ("meta-llama/Meta-Llama-3-8B-Instruct", 8 * 10**9, 8 * 10**9),
        ("Mixtral-8x7B", 56 * 10**9, None),
        ("zephyr-orpo-141b-A35b-v0.1", 141 * 10**9, 35 * 10**9),
        ("141B-A35B", 141 * 10**9, 35 * 10**9),
        ("SmolLM2-360M", 360 * 10**6, 360 * 10**6),
        ("Qwen2.5-0.5B-Instruct", 5 * 10**8, 5 * 10**8),
        ("Qwen2.5-7B-Instruct-1M", 7 * 10**9, 7 * 10**9),  # the first size wins; "1M" is a context length
        ("Qwen1.5-MoE-A2.7B-Chat", None, 27 * 10**8),
        ("Llama-4-Scout-17B-16E-Instruct", None, 17 * 10**9),
    ],
)
def test_parse_model_size_reads_the_issue_examples(name, total, active):
    size = counting.parse_model_size(name)
    assert (size.total, size.active) == (total, active)


@pytest.mark.parametrize("name", ["gpt2", "Phi-3-mini-4k-instruct", "distilbert-base-uncased", "", "8x", "v0.3"])
def test_parse_model_size_is_none_when_the_name_has_no_size(name):
    assert counting.parse_model_size(name) is None


_WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=8)


@given(
    words_before=st.lists(_WORD, max_size=3),
    words_after=st.lists(_WORD, max_size=3),
    whole=st.integers(1, 999),
    tenths=st.one_of(st.none(), st.integers(0, 9)),
    unit=st.sampled_from(["M", "B", "T", "m", "b"]),
)
def test_parse_model_size_reads_any_size_between_words(words_before, words_after, whole, tenths, unit):
    number = f"{whole}" if tenths is None else f"{whole}.{tenths}"
    name = "-".join([*words_before, number + unit, *words_after])
    expected = (whole * 10 + (tenths or 0)) * {"m": 10**6, "b": 10**9, "t": 10**12}[unit.lower()] // 10
    size = counting.parse_model_size(name)
    assert size.total == expected == size.active


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz-_/. ", max_size=30))
def test_names_without_digits_have_no_size(name):
    assert counting.parse_model_size(name) is None


# ---------------------------------------------------------------------------------- bad input
def test_a_config_missing_fields_is_a_clear_error():
    with pytest.raises(ValueError, match="missing num_hidden_layers, num_attention_heads, intermediate_size"):
        counting.count_parameters({"model_type": "llama", "vocab_size": 100, "hidden_size": 64})
    with pytest.raises(ValueError, match="num_local_experts"):
        counting.count_parameters({**TINY["mixtral"], "num_local_experts": None})
    with pytest.raises(ValueError, match="model_type"):
        counting.count_parameters({"vocab_size": 100})
    with pytest.raises(ValueError, match="does not know model_type 'not-a-model'"):
        counting.count_parameters({**TINY["llama"], "model_type": "not-a-model"})


def test_as_config_builds_a_transformers_config_from_a_dict_an_entry_or_a_folder():
    from transformers import PretrainedConfig

    llama = counting.as_config(TINY["llama"])
    assert isinstance(llama, PretrainedConfig) and llama.model_type == "llama" and llama.hidden_size == 256
    assert counting.as_config(llama) is llama  # a transformers config is used as it is
    entry = CATALOG["mistralai/Mixtral-8x7B-Instruct-v0.1"]
    assert counting.as_config(entry).num_local_experts == 8
    folder = counting.as_config(chatkit.embedded_model_path())
    assert folder.model_type == "llama"
    with pytest.raises(ValueError, match="missing intermediate_size"):
        counting.as_config({k: v for k, v in TINY["llama"].items() if k != "intermediate_size"})
    with pytest.raises(ValueError, match="Expected a config"):
        counting.as_config(3.5)


def test_model_ref_is_the_one_door_for_a_name_a_config_or_an_entry(monkeypatch):
    ref = counting.model_ref(chatkit.embedded_model_path())
    assert ref.label == "chatkit's embedded model (offline)" and ref.config.model_type == "llama"
    assert ref.facts.source == "config.json in the model folder"
    monkeypatch.setattr(counting, "model_facts", lambda name: pytest.fail(f"{name!r} looked up again"))
    assert counting.model_ref(ref) is ref and counting.as_config(ref) is ref.config  # resolved once, then passed on
    assert counting.count_parameters(ref).total == counting.count_parameters(ref.config).total
    entry = CATALOG["mistralai/Mixtral-8x7B-Instruct-v0.1"]
    assert counting.model_ref(entry).label == entry.repo_id and counting.model_ref(entry).facts is None
    assert counting.model_ref(TINY["llama"]).label == "model"


# ------------------------------------------------------------- nonsense numbers, refused at the door
@pytest.mark.parametrize(
    "field, value",
    [
        ("num_hidden_layers", -3),
        ("sliding_window", -1),
        ("hidden_size", -256),
        ("vocab_size", -1000),
        ("num_attention_heads", 0),
        ("hidden_size", "256"),
        ("num_key_value_heads", 0),
        ("num_hidden_layers", True),
        ("intermediate_size", 2.5),
    ],
)
def test_nonsense_numbers_in_a_config_name_the_field_and_its_value(field, value):
    import re

    with pytest.raises(ValueError, match=re.escape(f"config says {field}={value!r}: it must be a whole number")):
        counting.as_config({**TINY["llama"], field: value})
    with pytest.raises(ValueError, match=re.escape(f"{field}={value!r}")):
        counting.count_parameters({**TINY["llama"], field: value})


def test_a_transformers_config_with_nonsense_numbers_is_refused_too():
    from transformers import AutoConfig

    config = AutoConfig.for_model("mistral", sliding_window=-1)  # transformers itself accepts it
    with pytest.raises(ValueError, match=r"sliding_window=-1: it must be a whole number ≥ 0"):
        counting.as_config(config)
    assert counting.as_config({**TINY["llama"], "sliding_window": None}).sliding_window is None
