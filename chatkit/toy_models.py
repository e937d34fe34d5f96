"""Models with random weights to measure: Llama ladders, Mixture-of-Experts twins, a padded target.

Random weights decode exactly as fast as trained ones (speed depends on shapes and dtype only), so
these stand in for real models of any size without a download:

- `llama_config()` / `random_llama()` / `random_model()`: Llama-shaped models of a given width and depth;
- `ladder_configs()`: a ladder from ~7M to ~540M parameters on a CPU, up to Llama 3 8B's shape on a GPU,
  sized to the memory available there;
- `random_moe()`: a Mixtral-style MoE and two dense twins (same total, same active parameters);
- `zero_pad_mlp()` / `intermediate_size_for()`: the same function with many more bytes per token
  (a memory-bound target for assisted generation that agrees with the original model);
- `perturbed_copy()`: a model with noise added to its weights (a draft that agrees less often);
- `fixed_cost_per_token()`: what a token costs whatever the weights, timed on a thin twin.

Example:
    >>> model = random_llama(64, 2, vocab_size=256)
    >>> model.config.intermediate_size, model.num_parameters()
    (192, 139584)
"""

import copy

from .counting import count_parameters
from .dtypes import BYTES_PER_PARAM, normalize_dtype, torch_dtype
from .machine import machine_memory
from .speed import decode_speed, weight_bytes_per_token


def llama_config(
    hidden_size,
    num_layers,
    vocab_size=8192,
    intermediate_size=None,
    head_dim=64,
    kv_heads=None,
    max_positions=2048,
    tie_word_embeddings=False,
):
    """A Llama-shaped config: intermediate ≈ 8/3 × hidden (rounded to 64), heads of 64 dimensions."""
    from transformers import LlamaConfig

    if hidden_size % head_dim:
        raise ValueError(f"hidden_size ({hidden_size}) must be a multiple of head_dim ({head_dim}).")
    heads = hidden_size // head_dim
    if intermediate_size is None:
        intermediate_size = 64 * round(hidden_size * 8 / 3 / 64)
    return LlamaConfig(
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        intermediate_size=intermediate_size,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads or heads,
        head_dim=head_dim,
        vocab_size=vocab_size,
        max_position_embeddings=max_positions,
        tie_word_embeddings=tie_word_embeddings,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )


# (hidden, layers) of the CPU ladder: roughly 7M, 27M, 69M, 169M, 536M and 837M parameters with an
# 8,192-token vocabulary. Each rung is at least twice the one before, so "bigger is slower" stands out
# of the noise of a busy machine; the top rungs read gigabytes per token in fp32, enough for a CPU's
# matrix kernels to approach its memory bandwidth.
LADDER_SHAPES = ((256, 4), (512, 6), (768, 8), (1024, 12), (2048, 10), (2048, 16))
QUICK_RUNGS = (0, 1, 2, 4)  # the quick run: 7M to 69M, then 536M (2 GB per token in fp32)

# The GPU ladder: the shapes of real models (random weights), where a GPU's bandwidth starts to
# matter: Llama 3.2 1B and 3B (tied embeddings) and Llama 3 8B.
GPU_LADDER_SHAPES = {
    "Llama-3.2-1B": dict(
        hidden_size=2048,
        num_layers=16,
        intermediate_size=8192,
        head_dim=64,
        kv_heads=8,
        vocab_size=128256,
        tie_word_embeddings=True,
    ),
    "Llama-3.2-3B": dict(
        hidden_size=3072,
        num_layers=28,
        intermediate_size=8192,
        head_dim=128,
        kv_heads=8,
        vocab_size=128256,
        tie_word_embeddings=True,
    ),
    "Llama-3-8B": dict(
        hidden_size=4096, num_layers=32, intermediate_size=14336, head_dim=128, kv_heads=8, vocab_size=128256
    ),
}


def ladder_configs(quick=True, max_weight_bytes=None, dtype="float32", device=None):
    """Configs for a ladder of Llama models, small to large, for the CPU or (`device="cuda"`) a GPU.

    CPU, `quick=True`: four rungs, about 7M, 27M, 69M and 536M parameters (2 GB per token in fp32),
    seconds each; `quick=False` adds 169M and 837M. GPU: the shapes of Llama 3.2 1B and 3B and Llama 3 8B.
    The ladder stops where the weights would exceed `max_weight_bytes` (default: a quarter of the
    memory available now, on the device).
    """
    on_gpu = str(device or "cpu").startswith("cuda")
    if max_weight_bytes is None:
        max_weight_bytes = machine_memory("cuda" if on_gpu else "cpu").available_bytes // (2 if on_gpu else 4)
    if on_gpu:
        candidates = [llama_config(**shape) for shape in GPU_LADDER_SHAPES.values()]
    else:
        shapes = [LADDER_SHAPES[i] for i in QUICK_RUNGS] if quick else LADDER_SHAPES
        candidates = [llama_config(hidden, layers) for hidden, layers in shapes]
    configs = []
    for config in candidates:
        if count_parameters(config).total * BYTES_PER_PARAM[normalize_dtype(dtype)] > max_weight_bytes:
            break
        configs.append(config)
    return configs


def random_model(config, dtype="float32", device=None, seed=0):
    """A causal LM with random weights from `config`, in eval mode, on `device` (CPU by default).

    Random weights decode exactly as fast as trained ones: speed depends on shapes and dtype only.
    """
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    dtype = torch_dtype(dtype)
    with torch.device(device or "cpu"):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    return model.eval()


def random_llama(hidden_size, num_layers, dtype="float32", device=None, seed=0, **config_kwargs):
    """A random-weight Llama (see `llama_config`), ready to time."""
    return random_model(llama_config(hidden_size, num_layers, **config_kwargs), dtype, device, seed)


def random_moe(
    hidden_size=512,
    num_layers=4,
    num_experts=8,
    experts_per_token=2,
    expert_size=1024,
    vocab_size=8192,
    dtype="float32",
    seed=0,
    device=None,
):
    """A Mixtral-style MoE and two dense Llamas: same total parameters, and same active ones.

    Returns {"moe": ..., "dense_same_total": ..., "dense_same_active": ...}: the dense twins share the
    MoE's attention and embeddings; their MLP is num_experts × (or experts_per_token ×) one expert.
    """
    from transformers import MixtralConfig

    if not 1 <= experts_per_token <= num_experts:
        raise ValueError(
            f"experts_per_token must be between 1 and num_experts ({num_experts}), got {experts_per_token}."
        )
    heads = hidden_size // 64
    moe_config = MixtralConfig(
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        intermediate_size=expert_size,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        head_dim=64,
        vocab_size=vocab_size,
        num_local_experts=num_experts,
        num_experts_per_tok=experts_per_token,
        max_position_embeddings=2048,
        tie_word_embeddings=False,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
        sliding_window=None,
    )
    return {
        "moe": random_model(moe_config, dtype, device, seed=seed),
        "dense_same_total": random_llama(
            hidden_size,
            num_layers,
            dtype,
            device,
            seed=seed,
            vocab_size=vocab_size,
            intermediate_size=num_experts * expert_size,
        ),
        "dense_same_active": random_llama(
            hidden_size,
            num_layers,
            dtype,
            device,
            seed=seed,
            vocab_size=vocab_size,
            intermediate_size=experts_per_token * expert_size,
        ),
    }


# ---------------------------------------------------------------------------------------------
# A memory-bound target that agrees with the original model


def zero_pad_mlp(model, intermediate_size):
    """A copy of `model` whose MLPs are widened to `intermediate_size` with zeros: same function, more bytes.

    The extra gate/up rows are zero, so their activations are act(0) × 0 = 0, and the extra down
    columns are zero, so they add nothing: the logits are those of the original model (up to the
    rounding order of the sums), but each token reads many more bytes. Used as a memory-bound
    target for assisted generation whose draft was trained on the original model.
    Works for Llama-family MLPs (`gate_proj`, `up_proj`, `down_proj`).
    """
    import torch

    layers = getattr(getattr(model, "model", None), "layers", None)
    if layers is None or not all(hasattr(layer, "mlp") and hasattr(layer.mlp, "gate_proj") for layer in layers):
        raise ValueError(
            "zero_pad_mlp needs a Llama-family model (model.model.layers[i].mlp.gate_proj/up_proj/down_proj); "
            f"got {type(model).__name__}."
        )
    old = model.config.intermediate_size
    if not isinstance(intermediate_size, int) or intermediate_size < old:
        raise ValueError(
            f"intermediate_size must be a whole number ≥ the model's own ({old}), got {intermediate_size!r}."
        )
    padded = copy.deepcopy(model)
    padded.config.intermediate_size = intermediate_size
    with torch.no_grad():
        for layer in padded.model.layers:
            mlp = layer.mlp
            for name, grow_rows in (("gate_proj", True), ("up_proj", True), ("down_proj", False)):
                linear = getattr(mlp, name)
                weight = linear.weight
                if grow_rows:
                    new = torch.nn.Linear(
                        weight.shape[1],
                        intermediate_size,
                        bias=linear.bias is not None,
                        dtype=weight.dtype,
                        device=weight.device,
                    )
                    new.weight.zero_()
                    new.weight[:old] = weight
                    if linear.bias is not None:
                        new.bias.zero_()
                        new.bias[:old] = linear.bias
                else:
                    new = torch.nn.Linear(
                        intermediate_size,
                        weight.shape[0],
                        bias=linear.bias is not None,
                        dtype=weight.dtype,
                        device=weight.device,
                    )
                    new.weight.zero_()
                    new.weight[:, :old] = weight
                    if linear.bias is not None:
                        new.bias.copy_(linear.bias)
                setattr(mlp, name, new)
            if hasattr(mlp, "intermediate_size"):
                mlp.intermediate_size = intermediate_size
    return padded.eval()


def intermediate_size_for(model, weight_bytes):
    """The MLP width at which `zero_pad_mlp(model, width)` reads about `weight_bytes` per token."""
    config = model.config
    layers = config.num_hidden_layers
    hidden = config.hidden_size
    dtype_bytes = BYTES_PER_PARAM[normalize_dtype(next(model.parameters()).dtype)]
    others = weight_bytes_per_token(model) - 3 * layers * hidden * config.intermediate_size * dtype_bytes
    width = (weight_bytes - others) // (3 * layers * hidden * dtype_bytes)
    return max(int(width), config.intermediate_size)


def perturbed_copy(model, noise=0.4, seed=0):
    """A copy of `model` with Gaussian noise of `noise` × each tensor's standard deviation added to it.

    A draft that agrees with its target less often than a distilled one: how assisted generation
    behaves when the draft guesses wrong now and then, as real drafts do.
    """
    import torch

    if not isinstance(noise, (int, float)) or noise < 0:
        raise ValueError(f"noise must be a number ≥ 0 (a fraction of each weight's spread), got {noise!r}.")
    generator = torch.Generator().manual_seed(seed)
    noisy = copy.deepcopy(model)
    with torch.no_grad():
        for param in noisy.parameters():
            if param.is_floating_point() and param.numel() > 1:
                spread = float(param.float().std())
                param.add_((torch.randn(param.shape, generator=generator) * noise * spread).to(param))
    return noisy.eval()


def fixed_cost_per_token(num_layers, dtype="float32", device=None, new_tokens=16, repeats=2):
    """Seconds per decoded token of a thin twin: `num_layers` layers, 64 wide, a 256-token vocabulary.

    It runs every operation a model of that depth runs but reads almost no weights, so its time per
    token is the fixed cost each token pays whatever the width: Python, `generate`'s bookkeeping, a
    kernel call per operation.
    """
    import torch

    thin = random_llama(64, num_layers, dtype, device=device, vocab_size=256)
    prompt = torch.randint(3, 256, (1, 16), generator=torch.Generator().manual_seed(0)).to(thin.device)
    measured, _ = decode_speed(thin, prompt, new_tokens=new_tokens, repeats=repeats)
    return 1 / measured.tokens_per_s
