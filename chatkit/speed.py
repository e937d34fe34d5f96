"""Measuring generation speed on the reader's own machine: bandwidth, bytes per token, tokens/s.

Decoding one token at batch 1 reads every active weight once, so for a model large enough its speed
is set by memory bandwidth, not arithmetic: tokens/s ≈ bandwidth ÷ bytes read per token. This module
measures both sides of that formula on whatever machine it runs on (CPU, or a CUDA GPU):

- `measure_bandwidth()`: a large copy and a large read, in GB/s; `PUBLISHED_BANDWIDTH`: what
  common hardware is sold with, and where each figure comes from;
- `weight_bytes_per_token(model)`: the bytes one decoding step reads;
- `decode_speed()`: tokens/s after the prompt (prefill excluded) and the time to the first token;
  `prefill_speed()`, `time_to_first_token()`; `matrix_time_per_token()`: the matrix products alone;
- `forward_cost_ratio()` / `experts_read()`: why verifying several tokens costs a Mixture-of-Experts
  model more than a dense one.

Models to measure come from `chatkit.toy_models`; assisted generation is `chatkit.assisted`; the
recommended fast path is `chatkit.fast_decoding`.

What it simplifies: times are wall-clock bests or medians of a few repeats on a machine that may be busy;
the bytes per token count weights only (the KV cache adds a little at short contexts).

Example:
    >>> import chatkit
    >>> model, tokenizer = chatkit.load_model(chatkit.embedded_model_path())
    >>> weight_bytes_per_token(model) == 4 * model.num_parameters()   # fp32, embedding tied to the output
    True
    >>> speed, output = decode_speed(model, tokenizer("Hello", return_tensors="pt").input_ids, 4, repeats=1)
    >>> speed.new_tokens, speed.tokens_per_s > 0
    (4, True)
"""

import statistics
import time
from dataclasses import asdict, dataclass

from .counting import count_parameters
from .dtypes import BYTES_PER_PARAM, normalize_dtype, quantization_kind
from .sizing import estimate_memory


def model_device(model):
    """The device of a model's first parameter (where its inputs must go)."""
    return next(model.parameters()).device


def synchronize(device):
    """Wait for a GPU's queued work to finish (a no-op on the CPU), so a timer measures it."""
    import torch

    if getattr(device, "type", device) == "cuda":
        torch.cuda.synchronize()


# ---------------------------------------------------------------------------------------------
# Published peak memory bandwidths (GB/s), with where each figure comes from. Peak = the memory's
# data rate × bus width; programs reach 50-90% of it. Laptop and desktop CPUs: two 64-bit channels.

PUBLISHED_BANDWIDTH = (
    # (kind, hardware, GB/s, source)
    ("consumer CPU", "laptop/desktop, DDR4-3200, 2 channels", 51.2, "JEDEC DDR4: 3,200 MT/s × 8 B × 2 channels"),
    ("consumer CPU", "laptop/desktop, DDR5-5600, 2 channels", 89.6, "JEDEC DDR5: 5,600 MT/s × 8 B × 2 channels"),
    ("laptop (Apple)", "Apple M2 (unified memory)", 100, "apple.com, MacBook Air M2 tech specs"),
    ("desktop (Apple)", "Apple M2 Ultra (unified memory)", 800, "apple.com, Mac Studio (2023) tech specs"),
    ("server CPU", "AMD EPYC 9004, 12 × DDR5-4800", 460.8, "AMD EPYC 9004 product brief: 12 channels DDR5-4800"),
    ("data-centre GPU", "NVIDIA T4 (Colab's free GPU)", 320, "nvidia.com, T4 datasheet"),
    ("consumer GPU", "NVIDIA RTX 3060 12 GB", 360, "nvidia.com, GeForce RTX 3060 specs"),
    ("consumer GPU", "NVIDIA RTX 4090", 1008, "nvidia.com, GeForce RTX 4090 specs"),
    ("data-centre GPU", "NVIDIA A100 80GB SXM", 2039, "nvidia.com, A100 datasheet"),
    ("data-centre GPU", "NVIDIA H100 SXM", 3350, "nvidia.com, H100 datasheet"),
    ("data-centre GPU", "NVIDIA H200", 4800, "nvidia.com, H200 datasheet"),
    ("data-centre GPU", "AMD Instinct MI300X", 5300, "amd.com, MI300X datasheet"),
)


# ---------------------------------------------------------------------------------------------
# Memory bandwidth


@dataclass
class Bandwidth:
    """Measured memory bandwidth in GB/s (10^9 bytes/s). A copy moves each byte twice (read + write)."""

    device: str
    copy_gb_s: float
    read_gb_s: float
    size_mib: int

    def as_dict(self):
        return asdict(self)


def measure_bandwidth(size_mib=256, repeats=5, device=None):
    """Measure memory bandwidth with a large copy (read + write counted) and a large read (a sum).

    `size_mib` must be far larger than the CPU's caches (tens of MiB) or the cache is measured
    instead. `device=None` uses the CPU; pass "cuda" for the GPU's memory. The best of `repeats`
    is returned: interference from other programs only ever slows a run down.
    """
    import torch

    if not isinstance(size_mib, int) or size_mib < 16:
        raise ValueError(f"size_mib must be a whole number ≥ 16 (far above cache sizes), got {size_mib!r}.")
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a whole number ≥ 1, got {repeats!r}.")
    device = torch.device(device or "cpu")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for but torch sees no CUDA GPU; use device='cpu'.")
    numel = size_mib * 2**20 // 4
    source = torch.ones(numel, dtype=torch.float32, device=device)
    target = torch.empty_like(source)
    nbytes = numel * 4

    def best_time(work):
        work()  # touch the pages and warm up once
        synchronize(device)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            work()
            synchronize(device)
            times.append(time.perf_counter() - start)
        return min(times)

    copy_s = best_time(lambda: target.copy_(source))
    read_s = best_time(lambda: source.sum())
    return Bandwidth(
        device=device.type,
        copy_gb_s=2 * nbytes / copy_s / 1e9,
        read_gb_s=nbytes / read_s / 1e9,
        size_mib=size_mib,
    )


# ---------------------------------------------------------------------------------------------
# Bytes read per token


def bytes_per_token(config, dtype="bf16", base_dtype="bf16", double_quant=False):
    """Bytes of weights one decoding step reads for a model stored in `dtype`, from its config alone.

    - The active parameters only: a Mixture-of-Experts token reads the experts it is routed to.
    - The input embedding is a table look-up (one row per token), so it is left out unless it is
      tied to the output layer, which reads all of it.
    - For bitsandbytes "int8" / "4bit", what bitsandbytes really stores: the quantized linear layers
      with their scales, and in `base_dtype` what it leaves alone: the output layer (`lm_head`), and
      in transformers 5 the fused MoE experts (see `chatkit.sizing.estimate_memory`).

    Example:
        >>> llama = "meta-llama/Meta-Llama-3-8B-Instruct"
        >>> [round(bytes_per_token(llama, d) / 1e9, 2) for d in ("bf16", "int8", "4bit")]
        [15.01, 8.04, 4.98]
    """
    counts = count_parameters(config)
    text = counts.config
    tied = getattr(text, "tie_word_embeddings", False)
    lookup_only = 0 if tied else text.vocab_size * text.hidden_size
    key, base = normalize_dtype(dtype), normalize_dtype(base_dtype)
    if key in ("int8", "4bit"):
        weights = estimate_memory(
            counts, key, context_length=0, overhead=0, base_dtype=base, double_quant=double_quant
        ).weights
        inactive = counts.total - counts.active  # unquantized MoE experts a token does not use
        return int(weights - (lookup_only + inactive) * BYTES_PER_PARAM[base] - counts.buffer_bytes)
    return int((counts.active - lookup_only) * BYTES_PER_PARAM[key])


def weight_bytes_per_token(model):
    """`bytes_per_token` for a loaded model: its config, its dtype, its bitsandbytes quantization."""
    floating = [p.dtype for p in model.parameters() if p.is_floating_point()]
    base = normalize_dtype(floating[0]) if floating else "bf16"
    quantization = getattr(getattr(model, "hf_quantizer", None), "quantization_config", None)
    try:
        kind, double = quantization_kind(quantization)
    except ValueError:  # GPTQ, AWQ...: counted at the dtype of the floating-point weights
        kind, double = None, False
    return bytes_per_token(model.config, kind or base, base, double)


# ---------------------------------------------------------------------------------------------
# Timing generation


@dataclass
class DecodeSpeed:
    """One decoding measurement. `tokens_per_s` excludes the prompt (prefill) and the first token."""

    tokens_per_s: float
    first_token_s: float
    new_tokens: int
    prompt_tokens: int
    total_s: float

    def as_dict(self):
        return asdict(self)


def timed_generate(model, input_ids, new_tokens, force_length=True, **generate_kwargs):
    """(seconds, output ids) of one greedy `generate` call; `force_length` makes it run the full length.

    A static cache passed as `past_key_values` is reset first, so every call starts from the prompt.
    """
    import torch

    device = input_ids.device
    kwargs = dict(do_sample=False, max_new_tokens=new_tokens)
    if force_length:
        kwargs["min_new_tokens"] = new_tokens
    kwargs.update(generate_kwargs)
    synchronize(device)
    start = time.perf_counter()
    with torch.inference_mode():
        if getattr(kwargs.get("past_key_values"), "is_compileable", False):  # a static cache: start from the prompt
            kwargs["past_key_values"].reset()
        output = model.generate(input_ids, attention_mask=torch.ones_like(input_ids), **kwargs)
    synchronize(device)
    return time.perf_counter() - start, output


def decode_speed(model, input_ids, new_tokens=32, repeats=3, warmup=True, force_length=True, **generate_kwargs):
    """Decode tokens/s at batch 1 with the prompt excluded, and the time to the first token.

    Times `generate` for 1 new token (prefill + first token: the time to first token) and for up
    to `new_tokens`; the difference is pure decoding: (generated - 1) / (t_n - t_1). With
    `force_length=True` generation runs the full length (`min_new_tokens`), so random models that
    emit the end token early still decode `new_tokens`; `False` lets a chat model stop at its end
    token. Each time is the best of `repeats` (like `measure_bandwidth`'s: interference from other
    programs only slows a run down). Returns `(DecodeSpeed, output_ids)`; extra keywords go to `generate`.
    """
    if not isinstance(new_tokens, int) or new_tokens < 2:
        raise ValueError(f"new_tokens must be a whole number ≥ 2 to time decoding, got {new_tokens!r}.")
    if input_ids.dim() != 2 or input_ids.shape[0] != 1:
        raise ValueError(f"input_ids must have shape (1, prompt_length) for batch 1, got {tuple(input_ids.shape)}.")
    generate_kwargs = _one_static_cache(model, input_ids.shape[1] + new_tokens, generate_kwargs)
    if warmup:
        timed_generate(model, input_ids, 2, force_length, **generate_kwargs)
    # One token needs no drafting: time it without a draft or prompt lookup (they cannot speed up a
    # single token, and transformers 5.15's assisted decoding fails when asked for one).
    first_kwargs = {
        k: v for k, v in generate_kwargs.items() if k not in ("assistant_model", "prompt_lookup_num_tokens")
    }
    firsts, totals, output = [], [], None
    for _ in range(repeats):
        firsts.append(timed_generate(model, input_ids, 1, force_length, **first_kwargs)[0])
        total, output = timed_generate(model, input_ids, new_tokens, force_length, **generate_kwargs)
        totals.append(total)
    first, total = min(firsts), min(totals)  # the best of the repeats: other programs only ever slow a run down
    generated = output.shape[1] - input_ids.shape[1]
    rate = (generated - 1) / max(total - first, 1e-9) if generated > 1 else float("nan")
    speed = DecodeSpeed(rate, first, generated, input_ids.shape[1], total)
    return speed, output


def matrix_time_per_token(model, repeats=5):
    """Seconds a token spends in the model's matrix products alone: each linear layer once, batch 1.

    Almost every weight a token reads sits in these layers, so `weight_bytes_per_token(model)` ÷ this
    time is the bandwidth the matrix kernels themselves reach. What a token takes beyond it is the
    rest of the work: norms, attention, Python, `generate`'s bookkeeping, a kernel launch per operation.
    """
    import torch

    device = model_device(model)
    dtype = next(p.dtype for p in model.parameters() if p.is_floating_point())
    layers = [
        m
        for m in model.modules()
        if hasattr(m, "in_features") and hasattr(m, "out_features") and not list(m.children())
    ]
    inputs = {m.in_features: torch.randn(1, 1, m.in_features, dtype=dtype, device=device) for m in layers}

    def once():
        synchronize(device)
        start = time.perf_counter()
        for layer in layers:
            layer(inputs[layer.in_features])
        synchronize(device)
        return time.perf_counter() - start

    with torch.inference_mode():
        once()
        return statistics.median(once() for _ in range(repeats))


def token_time_parts(weight_bytes, copy_gb_s, token_s, matrix_s, fixed_s=0.0):
    """A decoded token's time, in seconds, split four ways; the parts add up to `token_s`.

    - "reading the weights": `weight_bytes` at the copy bandwidth, what the bandwidth rule predicts;
    - "matrix kernels' shortfall": how much longer the matrix products alone take (`matrix_s`, from
      `matrix_time_per_token`) than reading their bytes at the copy bandwidth;
    - "fixed cost": what every token pays whatever the weights (`fixed_s`, from a thin twin);
    - "the rest": what is left: attention, norms, the KV cache (negative where parts overlap).

    Example:
        >>> parts = token_time_parts(2e9, 40, token_s=0.1, matrix_s=0.08, fixed_s=0.005)
        >>> {name: round(1e3 * s) for name, s in parts.items()}  # milliseconds
        {'reading the weights': 50, "matrix kernels' shortfall": 30, 'fixed cost': 5, 'the rest': 15}
    """
    read = weight_bytes / (copy_gb_s * 1e9)
    shortfall = max(matrix_s - read, 0.0)
    return {
        "reading the weights": read,
        "matrix kernels' shortfall": shortfall,
        "fixed cost": fixed_s,
        "the rest": token_s - read - shortfall - fixed_s,
    }


def _one_static_cache(model, max_cache_len, generate_kwargs):
    """`cache_implementation="static"` replaced by one StaticCache for every call of a measurement.

    `generate` would size a new static cache to each call's length, and a compiled forward pass
    (automatic on a GPU) would then be compiled again for every length timed.
    """
    if generate_kwargs.get("cache_implementation") != "static":
        return generate_kwargs
    from transformers import StaticCache

    kwargs = {key: value for key, value in generate_kwargs.items() if key != "cache_implementation"}
    kwargs["past_key_values"] = StaticCache(config=model.config, max_cache_len=max_cache_len)
    return kwargs


def time_to_first_token(model, input_ids, repeats=3, **generate_kwargs):
    """Seconds from calling `generate` to its first new token (prefill + one step), median of repeats."""
    timed_generate(model, input_ids, 1, **generate_kwargs)
    return statistics.median(timed_generate(model, input_ids, 1, **generate_kwargs)[0] for _ in range(repeats))


def prefill_speed(model, input_ids, repeats=3):
    """Prompt tokens processed per second (one forward pass over the whole prompt)."""
    import torch

    device = input_ids.device
    times = []
    with torch.inference_mode():
        model(input_ids)
        for _ in range(repeats + 1):
            synchronize(device)
            start = time.perf_counter()
            model(input_ids)
            synchronize(device)
            times.append(time.perf_counter() - start)
    return input_ids.shape[1] / statistics.median(times[1:])


def forward_cost_ratio(model, tokens=6, repeats=5, prompt_length=32, seed=0):
    """Time of one forward pass over `tokens` new tokens ÷ time over 1, with a KV cache of a prompt.

    This is what a speculative-decoding step pays to verify `tokens - 1` draft tokens. A dense model
    reads the same weights for 1 token or 6 (ratio near 1); an MoE routes each token to its own
    experts, so verifying 6 tokens reads many more experts than decoding 1 (ratio well above 1).
    """
    import torch
    from transformers import DynamicCache

    generator = torch.Generator().manual_seed(seed)
    vocab = model.config.get_text_config().vocab_size
    device = model_device(model)
    prompt = torch.randint(3, vocab, (1, prompt_length), generator=generator).to(device)
    steps = {n: torch.randint(3, vocab, (1, n), generator=generator).to(device) for n in (1, tokens)}

    def one(n):
        cache = DynamicCache(config=model.config)
        with torch.inference_mode():
            model(prompt, past_key_values=cache, use_cache=True)
            synchronize(device)
            start = time.perf_counter()
            model(steps[n], past_key_values=cache, use_cache=True)
            synchronize(device)
        return time.perf_counter() - start

    one(1), one(tokens)
    single = statistics.median(one(1) for _ in range(repeats))
    several = statistics.median(one(tokens) for _ in range(repeats))
    return several / single


def experts_read(model, input_ids):
    """Distinct experts a forward pass over `input_ids` reads, per layer (a list of ints).

    One token reads `experts_per_token` experts per layer; several tokens read the union of theirs.
    """
    import torch

    with torch.inference_mode():
        out = model(input_ids, output_router_logits=True)
    k = model.config.num_experts_per_tok
    counts = []
    for logits in out.router_logits:
        chosen = logits.topk(k, dim=-1).indices
        counts.append(int(torch.unique(chosen).numel()))
    return counts
