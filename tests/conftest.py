"""Shared test set-up: every test runs offline, as CI and a classroom without wifi do.

Also the fixtures that more than one test file uses: each builds its model once per session.
"""

import os

import pytest
import torch

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ.pop("CHATKIT_MODEL", None)


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """Tiny models run fastest on one thread, and on a busy machine more threads stall each other."""
    torch.set_num_threads(1)


# ------------------------------------------------------- a saved Llama (test_memory, test_loading)
@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    """A 3.7M-parameter Llama (GQA, tied embeddings) saved once: big enough for realistic overheads."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    import chatkit

    folder = tmp_path_factory.mktemp("llama-3.7m")
    torch.manual_seed(0)
    config = LlamaConfig(
        hidden_size=256,
        intermediate_size=768,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=4,
        vocab_size=2048,
        tie_word_embeddings=True,
        max_position_embeddings=1024,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(chatkit.embedded_model_path()).save_pretrained(folder)
    return str(folder)


# ------------------------ models to time and decode (test_speed, test_toy_models, test_assisted, ...)
@pytest.fixture(scope="session")
def chat_model():
    """The embedded chat model and its tokenizer, on the CPU."""
    import chatkit

    model, tokenizer = chatkit.load_model(chatkit.embedded_model_path(), device_map=None)
    return model, tokenizer


@pytest.fixture(scope="session")
def small_llama():
    from chatkit import toy_models

    return toy_models.random_llama(128, 2, vocab_size=512)


@pytest.fixture(scope="session")
def prompt(chat_model):
    _, tokenizer = chat_model
    chat = [{"role": "user", "content": "What is the capital of France? Tell me about the capital of France."}]
    return tokenizer.apply_chat_template(chat, add_generation_prompt=True, return_dict=True, return_tensors="pt")[
        "input_ids"
    ]


@pytest.fixture(scope="session")
def moe_family():
    from chatkit import toy_models

    return toy_models.random_moe(
        hidden_size=128, num_layers=2, num_experts=4, experts_per_token=2, expert_size=128, vocab_size=512
    )
