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


class ScriptedModel:
    """Stands in for a local model: writes the given replies in turn after any prompt (the last one again
    when they run out), streaming them token by token when asked, and keeps the prompts it was given as text."""

    device = torch.device("cpu")
    config = None  # no known context: no guard, nothing cut

    def __init__(self, tokenizer, *replies):
        self.tokenizer = tokenizer
        self.replies = [tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"] for text in replies]
        self.prompts = []

    def generate(self, input_ids, attention_mask=None, streamer=None, **kwargs):
        self.prompts.append(self.tokenizer.decode(input_ids[0]))
        new = self.replies[min(len(self.prompts), len(self.replies)) - 1]
        if streamer is not None:
            streamer.put(input_ids)  # the prompt, which the streamer skips
            for token in new[0]:
                streamer.put(token[None])
            streamer.end()
        return torch.cat([input_ids, new], dim=1)
