"""Helpers several test files share (plain data and functions; shared fixtures are in conftest.py)."""

import torch

# Tiny configs (config.json fields) of a dense Llama, a Mixtral and a Qwen2-MoE: built locally, no download.
TINY = {
    "llama": dict(
        model_type="llama",
        vocab_size=1000,
        hidden_size=256,
        intermediate_size=688,
        num_hidden_layers=2,
        num_attention_heads=8,
        num_key_value_heads=4,
    ),
    "mixtral": dict(
        model_type="mixtral",
        vocab_size=1000,
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=8,
        num_key_value_heads=4,
        num_local_experts=4,
        num_experts_per_tok=2,
    ),
    "qwen2_moe": dict(
        model_type="qwen2_moe",
        vocab_size=1000,
        hidden_size=256,
        intermediate_size=512,
        moe_intermediate_size=128,
        shared_expert_intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=8,
        num_key_value_heads=4,
        num_experts=8,
        num_experts_per_tok=2,
        tie_word_embeddings=True,
    ),
}


def greedy(model, ids, n, **kwargs):
    """Exactly `n` new greedy tokens after `ids`, with plain `generate`."""
    with torch.inference_mode():
        return model.generate(
            ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=n, min_new_tokens=n, **kwargs
        )
