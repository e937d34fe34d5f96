"""An offline catalogue of well-known open chat models: the architecture facts that fix their size.

Each entry keeps the fields of the model's `config.json` on the Hugging Face Hub that decide how many
parameters it has and how big its KV cache grows (layers, hidden size, heads, KV heads, head_dim where
it is not hidden_size / heads, vocabulary, MLP width, experts and how many each token uses, tied
embeddings, sliding windows), copied from the repository named by its key. Next to them is the
parameter count its authors or the Hub publish, and where that number is published, so that
`chatkit.counting.count_parameters` can be checked against it (tests/test_counting.py does, for every entry).

Sources of the published counts:
- `hub_safetensors_source()`: the Hub's own count of the tensors stored in the repository's safetensors files,
  exact to the parameter (`HfApi().model_info(repo, expand=["safetensors"]).safetensors.total`; the
  model page shows it rounded, as "Model size").
- For Mixture-of-Experts models, the active (per-token) count is only published rounded, in the
  authors' announcement or model card; each entry names its page.

The catalogue is what `chatkit.hub.model_facts()` falls back to offline. Online it reads the real
`config.json` and the Hub's count instead, so a model missing here still works when the Hub answers.

Example:
    >>> CATALOG["mistralai/Mixtral-8x7B-Instruct-v0.1"].params
    46702792704
"""

from dataclasses import dataclass, field


def _hub_page(repo_id):
    return f"https://huggingface.co/{repo_id}"


def hub_safetensors_source(repo_id):
    """Where the exact count of a repository's stored parameters is published."""
    return (
        f"Hugging Face Hub, safetensors metadata of {repo_id} "
        f"(https://huggingface.co/api/models/{repo_id}?expand[]=safetensors, field safetensors.total)"
    )


@dataclass(frozen=True)
class CatalogEntry:
    """What chatkit knows offline about one model repository on the Hub."""

    repo_id: str
    config: dict  # config.json fields that decide the parameter count and the KV cache
    params: float  # published total parameter count
    params_source: str
    active_params: float | None = None  # published parameters used per token (MoE only)
    active_source: str | None = None
    licence: str = ""  # the Hub's licence tag
    note: str = ""
    config_source: str = field(default="", repr=False)

    @property
    def name(self):
        """The repository name without its owner, e.g. 'Mixtral-8x7B-Instruct-v0.1'."""
        return self.repo_id.rsplit("/", 1)[-1]

    @property
    def url(self):
        return _hub_page(self.repo_id)


def _entry(repo_id, config, params, params_source=None, config_source=None, **kw):
    return CatalogEntry(
        repo_id=repo_id,
        config=config,
        params=params,
        params_source=params_source or hub_safetensors_source(repo_id),
        config_source=config_source or f"https://huggingface.co/{repo_id}/blob/main/config.json",
        **kw,
    )


# Shared shapes, spelled out once per family; each entry below says which repository it describes.
_LLAMA3_8B = dict(
    model_type="llama",
    num_hidden_layers=32,
    hidden_size=4096,
    num_attention_heads=32,
    num_key_value_heads=8,
    intermediate_size=14336,
    vocab_size=128256,
    tie_word_embeddings=False,
)
_MIXTRAL_8X22B = dict(
    model_type="mixtral",
    num_hidden_layers=56,
    hidden_size=6144,
    num_attention_heads=48,
    num_key_value_heads=8,
    intermediate_size=16384,
    num_local_experts=8,
    num_experts_per_tok=2,
    tie_word_embeddings=False,
    sliding_window=None,
)

_ENTRIES = [
    # --- Meta Llama (gated: accept the licence on the model page first) -------------------------
    _entry(
        "meta-llama/Meta-Llama-3-8B-Instruct",
        _LLAMA3_8B,
        8_030_261_248,
        licence="llama3",
    ),
    _entry(
        "meta-llama/Llama-3.1-70B-Instruct",
        dict(
            model_type="llama",
            num_hidden_layers=80,
            hidden_size=8192,
            num_attention_heads=64,
            num_key_value_heads=8,
            intermediate_size=28672,
            vocab_size=128256,
            tie_word_embeddings=False,
        ),
        70_553_706_496,
        licence="llama3.1",
    ),
    _entry(
        "meta-llama/Llama-3.2-1B-Instruct",
        dict(
            model_type="llama",
            num_hidden_layers=16,
            hidden_size=2048,
            num_attention_heads=32,
            num_key_value_heads=8,
            head_dim=64,
            intermediate_size=8192,
            vocab_size=128256,
            tie_word_embeddings=True,
        ),
        1_235_814_400,
        licence="llama3.2",
    ),
    _entry(
        "meta-llama/Llama-3.2-3B-Instruct",
        dict(
            model_type="llama",
            num_hidden_layers=28,
            hidden_size=3072,
            num_attention_heads=24,
            num_key_value_heads=8,
            head_dim=128,
            intermediate_size=8192,
            vocab_size=128256,
            tie_word_embeddings=True,
        ),
        3_212_749_824,
        licence="llama3.2",
    ),
    # --- Mistral AI -------------------------------------------------------------------------------
    _entry(
        "mistralai/Mistral-7B-Instruct-v0.3",
        dict(
            model_type="mistral",
            num_hidden_layers=32,
            hidden_size=4096,
            num_attention_heads=32,
            num_key_value_heads=8,
            intermediate_size=14336,
            vocab_size=32768,
            tie_word_embeddings=False,
            sliding_window=None,
        ),
        7_248_023_552,
        licence="apache-2.0",
    ),
    _entry(
        "mistralai/Mistral-Nemo-Instruct-2407",
        # head_dim 128 although hidden_size / heads = 160: the attention is narrower than the model.
        dict(
            model_type="mistral",
            num_hidden_layers=40,
            hidden_size=5120,
            num_attention_heads=32,
            num_key_value_heads=8,
            head_dim=128,
            intermediate_size=14336,
            vocab_size=131072,
            tie_word_embeddings=False,
            sliding_window=None,
        ),
        12_247_782_400,
        licence="apache-2.0",
        note="head_dim 128 is set explicitly: 32 heads × 128 = 4096, narrower than hidden_size 5120.",
    ),
    _entry(
        "mistralai/Mixtral-8x7B-Instruct-v0.1",
        dict(
            model_type="mixtral",
            num_hidden_layers=32,
            hidden_size=4096,
            num_attention_heads=32,
            num_key_value_heads=8,
            intermediate_size=14336,
            vocab_size=32000,
            num_local_experts=8,
            num_experts_per_tok=2,
            tie_word_embeddings=False,
            sliding_window=None,
        ),
        46_702_792_704,
        licence="apache-2.0",
        active_params=12.9e9,
        active_source='https://mistral.ai/news/mixtral-of-experts/ ("46.7B total parameters but only '
        'uses 12.9B parameters per token")',
        note="8 experts of the 7B's MLP size; attention, embeddings and norms are shared, so 46.7B, not 8 × 7B.",
    ),
    _entry(
        "mistralai/Mixtral-8x22B-Instruct-v0.1",
        dict(_MIXTRAL_8X22B, vocab_size=32768),
        140_630_071_296,
        licence="apache-2.0",
        active_params=39e9,
        active_source='https://mistral.ai/news/mixtral-8x22b/ ("39B active parameters out of 141B")',
    ),
    _entry(
        "HuggingFaceH4/zephyr-orpo-141b-A35b-v0.1",
        dict(_MIXTRAL_8X22B, vocab_size=32000),
        141e9,
        params_source="https://huggingface.co/HuggingFaceH4/zephyr-orpo-141b-A35b-v0.1 (model card: "
        '"141B total parameters and 39B active parameters")',
        config_source="https://huggingface.co/mistral-community/Mixtral-8x22B-v0.1/blob/main/config.json "
        "(its base model: the fine-tune keeps the architecture)",
        active_params=39e9,
        active_source="https://huggingface.co/HuggingFaceH4/zephyr-orpo-141b-A35b-v0.1 (model card, "
        'titled "Zephyr 141B-A39B")',
        licence="apache-2.0",
        note="The repository name says A35b; its model card says 39B active and that the name's "
        "number was an early miscalculation.",
    ),
    # --- Qwen (Alibaba) ---------------------------------------------------------------------------
    _entry(
        "Qwen/Qwen2.5-0.5B-Instruct",
        dict(
            model_type="qwen2",
            num_hidden_layers=24,
            hidden_size=896,
            num_attention_heads=14,
            num_key_value_heads=2,
            intermediate_size=4864,
            vocab_size=151936,
            tie_word_embeddings=True,
            use_sliding_window=False,
        ),
        494_032_768,
        licence="apache-2.0",
        note="Qwen2 attention has biases on q, k and v; the vocabulary is a quarter of the parameters.",
    ),
    _entry(
        "Qwen/Qwen2.5-7B-Instruct",
        dict(
            model_type="qwen2",
            num_hidden_layers=28,
            hidden_size=3584,
            num_attention_heads=28,
            num_key_value_heads=4,
            intermediate_size=18944,
            vocab_size=152064,
            tie_word_embeddings=False,
            use_sliding_window=False,
        ),
        7_615_616_512,
        licence="apache-2.0",
    ),
    _entry(
        "Qwen/Qwen1.5-MoE-A2.7B-Chat",
        dict(
            model_type="qwen2_moe",
            num_hidden_layers=24,
            hidden_size=2048,
            num_attention_heads=16,
            num_key_value_heads=16,
            intermediate_size=5632,
            moe_intermediate_size=1408,
            shared_expert_intermediate_size=5632,
            num_experts=60,
            num_experts_per_tok=4,
            decoder_sparse_step=1,
            mlp_only_layers=[],
            vocab_size=151936,
            tie_word_embeddings=False,
            use_sliding_window=False,
        ),
        14_315_784_192,
        licence="tongyi-qianwen",
        active_params=2.7e9,
        active_source='https://huggingface.co/Qwen/Qwen1.5-MoE-A2.7B-Chat (model card: "14.3B parameters '
        'in total and 2.7B activated parameters during runtime")',
        note="60 small experts, 4 per token, plus a shared expert that every token uses.",
    ),
    # --- Hugging Face SmolLM2 ---------------------------------------------------------------------
    _entry(
        "HuggingFaceTB/SmolLM2-360M-Instruct",
        dict(
            model_type="llama",
            num_hidden_layers=32,
            hidden_size=960,
            num_attention_heads=15,
            num_key_value_heads=5,
            intermediate_size=2560,
            vocab_size=49152,
            tie_word_embeddings=True,
        ),
        361_821_120,
        licence="apache-2.0",
    ),
    _entry(
        "HuggingFaceTB/SmolLM2-1.7B-Instruct",
        dict(
            model_type="llama",
            num_hidden_layers=24,
            hidden_size=2048,
            num_attention_heads=32,
            num_key_value_heads=32,
            intermediate_size=8192,
            vocab_size=49152,
            tie_word_embeddings=True,
        ),
        1_711_376_384,
        licence="apache-2.0",
    ),
    # --- Google Gemma 2 (gated: accept the terms on the model page first) --------------------------
    _entry(
        "google/gemma-2-2b-it",
        dict(
            model_type="gemma2",
            num_hidden_layers=26,
            hidden_size=2304,
            num_attention_heads=8,
            num_key_value_heads=4,
            head_dim=256,
            intermediate_size=9216,
            vocab_size=256000,
            tie_word_embeddings=True,
            sliding_window=4096,
        ),
        2_614_341_888,
        licence="gemma",
        note="Named 2b, has 2.6B: a 256k-token vocabulary takes 0.59B of it. Every other layer attends "
        "to a 4096-token window only.",
    ),
    _entry(
        "google/gemma-2-9b-it",
        dict(
            model_type="gemma2",
            num_hidden_layers=42,
            hidden_size=3584,
            num_attention_heads=16,
            num_key_value_heads=8,
            head_dim=256,
            intermediate_size=14336,
            vocab_size=256000,
            tie_word_embeddings=True,
            sliding_window=4096,
        ),
        9_241_705_984,
        licence="gemma",
    ),
    # --- Microsoft Phi-3 --------------------------------------------------------------------------
    _entry(
        "microsoft/Phi-3-mini-4k-instruct",
        dict(
            model_type="phi3",
            num_hidden_layers=32,
            hidden_size=3072,
            num_attention_heads=32,
            num_key_value_heads=32,
            intermediate_size=8192,
            vocab_size=32064,
            tie_word_embeddings=False,
            sliding_window=2047,
            pad_token_id=32000,
        ),
        3_821_079_552,
        licence="mit",
        note="No size in the name ('mini'); q, k and v are one fused matrix.",
    ),
]

CATALOG = {entry.repo_id: entry for entry in _ENTRIES}
