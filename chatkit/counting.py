"""Counting a model's parameters: what its name claims, and the exact count from its config.

- `parse_model_size(name)`: what a name like "Mixtral-8x7B" or "141B-A35B" claims (read naively).
- `count_parameters(config)`: the exact total and per-token ("active") counts from a transformers
  config, by building the model on PyTorch's meta device (shapes only, no memory, no weights), with
  the split that decides its memory: experts, embeddings, the layers bitsandbytes quantizes.
- `model_ref(...)`: the one door for "a model": a name, a folder or a config, resolved once into a
  `ModelRef` (label, config, and the `chatkit.hub.ModelFacts` a name was read from); below it, only
  configs travel.
- `as_config(...)`: a transformers config from a dict, a catalogue entry, a folder or a model name,
  after checking it states every field that fixes the size, each a sensible number
  (`check_config_numbers`: no negative layers, no zero heads, no text where a count belongs).

What it leaves out: architectures transformers does not implement (give the count directly), and
remote-code models.

Example:
    >>> count_parameters("meta-llama/Meta-Llama-3-8B-Instruct").total
    8030261248
    >>> parse_model_size("Mixtral-8x22B-Instruct-v0.1")
    NameSize(total=176000000000, active=None, experts=8)
"""

import json
import os
import re
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import lru_cache
from typing import NamedTuple

from .catalog import CatalogEntry
from .formatting import params_text
from .hub import ModelFacts, model_facts


# ---------------------------------------------------------------------------------- from a name
class NameSize(NamedTuple):
    """Parameter counts a model's name claims. `None` where the name does not say."""

    total: int | None
    active: int | None
    experts: int | None = None


_UNITS = {"m": 10**6, "b": 10**9, "t": 10**12}
_NUMBER = r"(\d+(?:\.\d+)?)([mbt])"
_SIZE = re.compile(rf"^{_NUMBER}$")
_EXPERTS_X_SIZE = re.compile(rf"^(\d+)x{_NUMBER}$")
_ACTIVE = re.compile(rf"^a{_NUMBER}$")
_EXPERT_COUNT = re.compile(r"^(\d+)e$")


def _amount(number, unit):
    return int(Decimal(number) * _UNITS[unit])  # exact: "1.7B" is 1,700,000,000, no float noise


def parse_model_size(name):
    """Read the parameter counts a model name claims: NameSize(total, active, experts), or None.

    Sizes are the tokens between '-', '_' or spaces that read as a number and M, B or T
    ("360M", "0.5B", "8b"); context lengths like "4k" are not sizes. The first size wins
    ("Qwen2.5-7B-Instruct-1M" is 7B). Mixture-of-Experts names:
    - "8x7B": 8 experts of a 7B model, read naively as 56B total (the real Mixtral-8x7B has 46.7B:
      its experts share attention and embeddings); active is unknown from the name.
    - "141B-A35B" / "30B-A3B": total and active ("A") parameters.
    - "17B-16E" (Llama 4): 17B active, 16 experts, total not in the name.
    A plain "8B" is read as a dense model: active = total.

    Example:
        >>> parse_model_size("meta-llama/Meta-Llama-3-8B-Instruct")
        NameSize(total=8000000000, active=8000000000, experts=None)
    """
    if not isinstance(name, str):
        raise ValueError(f"parse_model_size expects a model name (str), got {type(name).__name__}.")
    total = active = experts = None
    plain = None
    for token in re.split(r"[-_\s]+", name.rsplit("/", 1)[-1].lower()):
        if match := _EXPERTS_X_SIZE.match(token):
            if total is None:
                experts = int(match[1])
                total = experts * _amount(match[2], match[3])
        elif match := _ACTIVE.match(token):
            active = _amount(match[1], match[2])
        elif match := _EXPERT_COUNT.match(token):
            experts = int(match[1])
        elif (match := _SIZE.match(token)) and plain is None and total is None:
            plain = _amount(match[1], match[2])
    if plain is not None:
        if experts is not None and active is None:  # "17B-16E": the size is the active part
            active = plain
        else:
            total = plain
    if total is None and active is None:
        return None
    if experts is None and active is None:
        active = total
    return NameSize(total, active, experts)


# -------------------------------------------------------------------------------- from a config
# Fields every decoder config must state to be sized; the MoE families add their own.
REQUIRED_FIELDS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads")
MOE_FIELDS = {
    "mixtral": ("intermediate_size", "num_local_experts", "num_experts_per_tok"),
    "qwen2_moe": ("moe_intermediate_size", "num_experts", "num_experts_per_tok"),
}


# Fields that count something (layers, heads, sizes): when a config states them, each must be a whole
# number ≥ 1. sliding_window may also be 0 or None (no window). Sizing divides and multiplies by these,
# so a nonsense value would come out as 0 GiB, negative bytes or a ZeroDivisionError far from its cause.
COUNT_FIELDS = REQUIRED_FIELDS + (
    "num_key_value_heads",
    "head_dim",
    "intermediate_size",
    "moe_intermediate_size",
    "max_position_embeddings",
    "num_local_experts",
    "num_experts_per_tok",
)


def check_config_numbers(fields):
    """Raise ValueError naming the field and its value when a config's counts are not whole numbers ≥ 1.

    `fields` is a config as a dict (config.json's contents) or a transformers config. Fields the
    config leaves out (or sets to None) are not checked here; `as_config` checks the required ones.

    Example:
        >>> check_config_numbers({"model_type": "llama", "num_hidden_layers": -3})
        Traceback (most recent call last):
        ...
        ValueError: The 'llama' config says num_hidden_layers=-3: it must be a whole number ≥ 1. Fix it in config.json (or where it was set).
    """
    if not isinstance(fields, dict):
        fields = fields.to_dict()
    model_type = fields.get("model_type") or "model"
    checks = [(name, 1) for name in COUNT_FIELDS + MOE_FIELDS.get(model_type, ())] + [("sliding_window", 0)]
    for name, smallest in checks:
        value = fields.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < smallest:
            raise ValueError(
                f"The {model_type!r} config says {name}={value!r}: it must be a whole number ≥ {smallest}"
                f"{' (0 or None: no window)' if smallest == 0 else ''}. Fix it in config.json (or where it was set)."
            )


# ------------------------------------------------------------------------- a model, resolved once
@dataclass(frozen=True)
class ModelRef:
    """A model reference resolved once, at the door: what to call it, its config, where that came from.

    label: what messages and tables call it (a repo id, "chatkit's embedded model (offline)", a
        config's name_or_path, or "model").
    config: the config that everything past the door reads (`model_ref` gives the text decoder's
        transformers config, its numbers checked).
    facts: the `chatkit.hub.ModelFacts` a name or folder was read from (its source, the published
        counts); None for a config given as such.
    """

    label: str
    config: object = field(repr=False)
    facts: ModelFacts | None = field(default=None, repr=False)


def model_ref(model):
    """The one door for "a model": a name or folder, or a config (dict, transformers, catalogue entry) -> ModelRef.

    A name or folder is looked up once, with `chatkit.hub.model_facts` (the folder, the Hub, or the
    offline catalogue; LookupError when none of them knows it); past the door only its config
    travels. A `ModelRef` is returned as it is.

    Example:
        >>> ref = model_ref("Mixtral-8x7B-Instruct-v0.1")
        >>> ref.label, ref.config.num_local_experts
        ('mistralai/Mixtral-8x7B-Instruct-v0.1', 8)
    """
    if isinstance(model, ModelRef):
        return model
    if isinstance(model, (str, os.PathLike)):
        facts = model_facts(str(model))
        return ModelRef(facts.label, as_config(facts.config), facts)
    label = getattr(model, "repo_id", None) or getattr(model, "name_or_path", None) or "model"
    return ModelRef(label, as_config(model))


def _as_dict(config):
    """A plain dict for a config given as a dict or a catalogue entry."""
    if isinstance(config, CatalogEntry):
        return dict(config.config)
    if isinstance(config, dict):
        return dict(config)
    raise ValueError(
        f"Expected a config (dict, transformers config, catalogue entry, model name or folder), "
        f"got {type(config).__name__}."
    )


def as_config(config):
    """A transformers config for `config`, after checking it states what sizing needs.

    Accepts a dict (the contents of config.json), a transformers `PretrainedConfig`, a catalogue
    entry, a `ModelRef`, a local model folder or a model name (through `model_ref`).

    Example:
        >>> as_config({"model_type": "llama", "vocab_size": 100, "hidden_size": 64,
        ...            "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128}).model_type
        'llama'
    """
    from transformers import AutoConfig, PretrainedConfig

    if isinstance(config, (str, os.PathLike)):
        return model_ref(config).config
    if isinstance(config, ModelRef):
        config = config.config
    if isinstance(config, PretrainedConfig) and not isinstance(config, type):
        text_config = config.get_text_config(decoder=True)
        check_config_numbers(text_config)
        return text_config
    fields = _as_dict(config)
    model_type = fields.get("model_type")
    if not model_type:
        raise ValueError(
            "The config has no 'model_type' (e.g. 'llama', 'mistral', 'mixtral', 'qwen2'): "
            "copy it from the model's config.json."
        )
    needed = REQUIRED_FIELDS + MOE_FIELDS.get(model_type, ("intermediate_size",))
    missing = [name for name in needed if fields.get(name) is None]
    if missing:
        raise ValueError(
            f"The {model_type!r} config is missing {', '.join(missing)}: these fix the model's size, "
            "and transformers would silently fill in its defaults. Copy them from the model's config.json."
        )
    check_config_numbers(fields)
    try:
        built = AutoConfig.for_model(model_type, **{k: v for k, v in fields.items() if k != "model_type"})
    except ValueError as error:
        raise ValueError(
            f"transformers does not know model_type {model_type!r} ({error}). Sizing needs an "
            "architecture transformers implements; upgrade transformers or give the count directly."
        ) from error
    return built.get_text_config(decoder=True)


@dataclass(frozen=True)
class ParameterCount:
    """Exact parameter counts of an architecture, and the split that decides its memory.

    total: every parameter stored once (tied input/output embeddings counted once).
    active: what one token's forward pass reads: everything except the routed experts it does not
        use (for a dense model, = total). Embeddings count in full, as model authors count them.
    experts: parameters of the routed experts (0 for a dense model).
    embedding: the input embedding plus an untied output layer (lm_head).
    quantizable: parameters in the `nn.Linear` layers bitsandbytes replaces (transformers' rules:
        not lm_head, not modules kept in fp32). MoE experts stored as fused 3-D tensors (transformers
        5) are not `nn.Linear`, so bitsandbytes leaves them in 16-bit; see `estimate_memory`.
    """

    total: int
    active: int
    experts: int = 0
    num_experts: int = 0
    experts_per_token: int = 0
    embedding: int = 0
    quantizable: int = 0
    linear_shapes: tuple = field(default=(), repr=False)  # (out_features, in_features) per quantizable layer
    expert_shapes: tuple = field(default=(), repr=False)  # (experts, rows, cols) per fused expert tensor
    buffer_bytes: int = field(default=0, repr=False)  # non-parameter tensors (rotary tables), as stored
    config: object = field(default=None, repr=False, compare=False)

    @property
    def is_moe(self):
        return self.experts > 0

    def __str__(self):
        text = f"{self.total:,} parameters ({params_text(self.total)})"
        if self.is_moe:
            text += (
                f"; {self.active:,} active per token ({params_text(self.active)}: "
                f"{self.experts_per_token} of {self.num_experts} experts)"
            )
        return text


def _num_experts(config):
    for name in ("num_local_experts", "num_experts", "n_routed_experts"):
        value = getattr(config, name, None)
        if value:
            return int(value)
    return 0


def _modules_bitsandbytes_skips(model):
    """Module names transformers' bitsandbytes integration leaves unquantized for this model."""
    try:
        from transformers.quantizers.base import HfQuantizer

        return HfQuantizer.get_modules_to_not_convert(model, None, model._keep_in_fp32_modules)
    except (ImportError, AttributeError):  # another transformers version: its documented default
        output = model.get_output_embeddings()
        return [name for name, module in model.named_modules() if module is output]


def _should_quantize(name, skipped):
    try:
        from transformers.quantizers.quantizers_utils import should_convert_module

        return should_convert_module(name, skipped)
    except ImportError:
        return not any(name == key or name.startswith(key + ".") or name.endswith(key) for key in skipped)


@lru_cache(maxsize=64)
def _count(model_type, config_json):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    fields = json.loads(config_json)
    fields.pop("model_type", None)
    config = AutoConfig.for_model(model_type, **fields)
    try:
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
    except ValueError as error:
        raise ValueError(
            f"transformers cannot build a causal language model for model_type {model_type!r}: {error}"
        ) from error

    total = experts = 0
    expert_shapes = []
    for name, param in model.named_parameters():  # shared (tied) tensors are listed once
        total += param.numel()
        if ".experts." in f".{name}":
            experts += param.numel()
            if param.dim() == 3:
                expert_shapes.append(tuple(param.shape))
    embedding = model.get_input_embeddings().weight.numel()
    output = model.get_output_embeddings()
    if output is not None and output.weight is not model.get_input_embeddings().weight:
        embedding += output.weight.numel()

    skipped = _modules_bitsandbytes_skips(model)
    linear_shapes = tuple(
        (module.out_features, module.in_features)
        for name, module in model.named_modules()
        if type(module) is torch.nn.Linear and ".experts." not in f".{name}." and _should_quantize(name, skipped)
    )
    buffer_bytes = sum(b.numel() * b.element_size() for b in model.buffers())

    num_experts = _num_experts(config)
    per_token = int(getattr(config, "num_experts_per_tok", 0) or 0)
    if experts and not (num_experts and per_token):
        raise ValueError(
            f"The {model_type!r} config has expert layers but does not say how many experts there are "
            "and how many each token uses (num_local_experts / num_experts, num_experts_per_tok)."
        )
    active = total - (experts * (num_experts - per_token) // num_experts if experts else 0)
    return ParameterCount(
        total=total,
        active=active,
        experts=experts,
        num_experts=num_experts if experts else 0,
        experts_per_token=per_token if experts else 0,
        embedding=embedding,
        quantizable=sum(o * i for o, i in linear_shapes),
        linear_shapes=linear_shapes,
        expert_shapes=tuple(expert_shapes),
        buffer_bytes=buffer_bytes,
    )


def count_parameters(config):
    """Exact total and per-token parameter counts of a model, from its config, without its weights.

    The model is built on PyTorch's meta device: every tensor has its shape but no memory, so even a
    141B model counts in a second or two. Results are cached per config.

    Example:
        >>> counts = count_parameters("mistralai/Mixtral-8x7B-Instruct-v0.1")
        >>> counts.total, counts.active, counts.experts_per_token, counts.num_experts
        (46702792704, 12879925248, 2, 8)
    """
    if isinstance(config, ParameterCount):
        return config
    built = as_config(config)
    fields = built.to_dict()
    # Keep only what can change shapes; nested sub-configs and generation settings do not.
    fields = {k: v for k, v in fields.items() if k not in {"transformers_version", "architectures"}}
    counted = _count(built.model_type, json.dumps(fields, sort_keys=True, default=str))
    return replace(counted, config=built)  # the cached count, with this config attached for the KV cache
