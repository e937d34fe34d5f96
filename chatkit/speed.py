"""Measuring generation speed on the reader's own machine, and the fast path chatkit recommends.

Decoding one token at batch 1 reads every active weight once, so its speed is set by memory
bandwidth, not arithmetic: tokens/s ≈ bandwidth ÷ bytes read per token. This module measures both
sides of that formula on whatever machine it runs on (CPU, or a CUDA GPU when there is one):

- `measure_bandwidth()`: a large copy and a large read, in GB/s;
- `decode_speed()`: tokens/s after the prompt (prefill excluded) and the time to the first token;
- `random_llama()` / `ladder_configs()`: models with random weights, ~10M to ~500M parameters;
- `zero_pad_mlp()`: the same function with many more bytes per token (a memory-bound target for
  assisted generation that agrees with the original model, and so with its draft);
- `compare_assisted()`: assisted generation or prompt lookup against plain greedy: speedup,
  tokens per target pass, identical output;
- `random_moe()` and its dense twins: Mixture-of-Experts against dense models;
- `prepare_for_decoding()` and `fast_generate_kwargs()`: chatkit's recommended generation path
  (thread count, prepacked bf16 weights on CPUs, static cache + torch.compile on GPUs).

What it simplifies: times are wall-clock medians of a few repeats on a machine that may be busy;
the bytes per token count weights only (the KV cache adds a little at short contexts).

Example:
    >>> bw = measure_bandwidth()                          # doctest: +SKIP
    >>> speed = decode_speed(model, input_ids)            # doctest: +SKIP
    >>> speed.tokens_per_s * weight_bytes_per_token(model) / 1e9 / bw.copy_gb_s   # doctest: +SKIP
"""

import copy
import os
import statistics
import time
from dataclasses import asdict, dataclass

# The environment variable that sets how many CPU threads the measurements and the fast path use.
THREADS_ENV_VAR = "CHATKIT_THREADS"


# ---------------------------------------------------------------------------------------------
# Threads and devices


def set_threads(threads=None):
    """Set torch's CPU thread count and return it.

    `threads=None` reads `CHATKIT_THREADS`, else keeps torch's current setting. On a busy machine
    fewer threads can be much faster: a thread that waits for a busy core stalls every matrix-vector
    product; one thread per free core is the rule.
    """
    import torch

    if threads is None:
        from_env = os.environ.get(THREADS_ENV_VAR, "").strip()
        if from_env:
            try:
                threads = int(from_env)
            except ValueError:
                raise ValueError(
                    f"{THREADS_ENV_VAR}={from_env!r} is not a whole number; set it to e.g. 1 or 2."
                ) from None
    if threads is not None:
        if not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be a whole number ≥ 1, got {threads!r}.")
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def _device_of(model):
    return next(model.parameters()).device


def _sync(device):
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
    ("consumer CPU", "Apple M2 (unified memory)", 100, "apple.com, MacBook Air M2 tech specs"),
    ("consumer CPU", "Apple M2 Ultra (unified memory)", 800, "apple.com, Mac Studio (2023) tech specs"),
    ("server CPU", "AMD EPYC 9004, 12 × DDR5-4800", 460.8, "AMD EPYC 9004 product brief: 12 channels DDR5-4800"),
    ("consumer GPU", "NVIDIA T4 (Colab's free GPU)", 320, "nvidia.com, T4 datasheet"),
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
        _sync(device)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            work()
            _sync(device)
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


def weight_bytes_per_token(model):
    """Bytes of weights one decoding step reads: active parameters × bytes per parameter.

    The counts come from `chatkit.sizing` (for a Mixture-of-Experts model, only the experts a token
    is routed to; for bitsandbytes 8-bit and 4-bit models, the quantized bytes with their scales).
    The input embedding is a table look-up (one row per token), so it is left out unless it is tied
    to the output layer, which reads all of it.
    """
    from .sizing import BYTES_PER_PARAM, count_parameters, estimate_memory, normalize_dtype

    config = model.config
    counts = count_parameters(config)
    text = config.get_text_config()
    tied = getattr(text, "tie_word_embeddings", False)
    lookup_only = 0 if tied else text.vocab_size * text.hidden_size
    floating = [p.dtype for p in model.parameters() if p.is_floating_point()]
    base = normalize_dtype(floating[0]) if floating else "bf16"
    quantization = getattr(getattr(model, "hf_quantizer", None), "quantization_config", None)
    if quantization is not None and (getattr(quantization, "load_in_4bit", False)
                                     or getattr(quantization, "load_in_8bit", False)):
        kind = "4bit" if quantization.load_in_4bit else "int8"
        double = bool(getattr(quantization, "bnb_4bit_use_double_quant", False))
        weights = estimate_memory(counts, kind, context_length=0, overhead=0, base_dtype=base,
                                  double_quant=double).weights
        inactive = counts.total - counts.active  # unquantized MoE experts a token does not use
        return int(weights - (lookup_only + inactive) * BYTES_PER_PARAM[base] - counts.buffer_bytes)
    return int((counts.active - lookup_only) * BYTES_PER_PARAM[base])


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


def _timed_generate(model, input_ids, new_tokens, force_length=True, **generate_kwargs):
    import torch

    device = input_ids.device
    kwargs = dict(do_sample=False, max_new_tokens=new_tokens)
    if force_length:
        kwargs["min_new_tokens"] = new_tokens
    kwargs.update(generate_kwargs)
    _sync(device)
    start = time.perf_counter()
    with torch.inference_mode():
        output = model.generate(input_ids, attention_mask=torch.ones_like(input_ids), **kwargs)
    _sync(device)
    return time.perf_counter() - start, output


def decode_speed(model, input_ids, new_tokens=32, repeats=3, warmup=True, force_length=True, **generate_kwargs):
    """Decode tokens/s at batch 1 with the prompt excluded, and the time to the first token.

    Times `generate` for 1 new token (prefill + first token: the time to first token) and for up
    to `new_tokens`; the difference is pure decoding: (generated - 1) / (t_n - t_1). With
    `force_length=True` generation runs the full length (`min_new_tokens`), so random models that
    emit the end token early still decode `new_tokens`; `False` lets a chat model stop at its end
    token. Returns `(DecodeSpeed, output_ids)`; extra keywords go to `generate`.
    """
    if not isinstance(new_tokens, int) or new_tokens < 2:
        raise ValueError(f"new_tokens must be a whole number ≥ 2 to time decoding, got {new_tokens!r}.")
    if input_ids.dim() != 2 or input_ids.shape[0] != 1:
        raise ValueError(f"input_ids must have shape (1, prompt_length) for batch 1, got {tuple(input_ids.shape)}.")
    if warmup:
        _timed_generate(model, input_ids, 2, force_length, **generate_kwargs)
    firsts, totals, output = [], [], None
    for _ in range(repeats):
        firsts.append(_timed_generate(model, input_ids, 1, force_length, **generate_kwargs)[0])
        total, output = _timed_generate(model, input_ids, new_tokens, force_length, **generate_kwargs)
        totals.append(total)
    first, total = statistics.median(firsts), statistics.median(totals)
    generated = output.shape[1] - input_ids.shape[1]
    rate = (generated - 1) / max(total - first, 1e-9) if generated > 1 else float("nan")
    speed = DecodeSpeed(rate, first, generated, input_ids.shape[1], total)
    return speed, output


def time_to_first_token(model, input_ids, repeats=3, **generate_kwargs):
    """Seconds from calling `generate` to its first new token (prefill + one step), median of repeats."""
    _timed_generate(model, input_ids, 1, **generate_kwargs)
    return statistics.median(_timed_generate(model, input_ids, 1, **generate_kwargs)[0] for _ in range(repeats))


def prefill_speed(model, input_ids, repeats=3):
    """Prompt tokens processed per second (one forward pass over the whole prompt)."""
    import torch

    device = input_ids.device
    times = []
    with torch.inference_mode():
        model(input_ids)
        for _ in range(repeats + 1):
            _sync(device)
            start = time.perf_counter()
            model(input_ids)
            _sync(device)
            times.append(time.perf_counter() - start)
    return input_ids.shape[1] / statistics.median(times[1:])


# ---------------------------------------------------------------------------------------------
# Models with random weights


def _dtype(dtype):
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    names = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
             "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}
    if dtype not in names:
        raise ValueError(f"dtype must be one of {sorted(names)} or a torch.dtype, got {dtype!r}.")
    return names[dtype]


def llama_config(hidden_size, num_layers, vocab_size=8192, intermediate_size=None, head_dim=64,
                 kv_heads=None, max_positions=2048, tie_word_embeddings=False):
    """A Llama-shaped config: intermediate ≈ 8/3 × hidden (rounded to 64), heads of 64 dimensions."""
    from transformers import LlamaConfig

    if hidden_size % head_dim:
        raise ValueError(f"hidden_size ({hidden_size}) must be a multiple of head_dim ({head_dim}).")
    heads = hidden_size // head_dim
    if intermediate_size is None:
        intermediate_size = 64 * round(hidden_size * 8 / 3 / 64)
    return LlamaConfig(
        hidden_size=hidden_size, num_hidden_layers=num_layers, intermediate_size=intermediate_size,
        num_attention_heads=heads, num_key_value_heads=kv_heads or heads, head_dim=head_dim,
        vocab_size=vocab_size, max_position_embeddings=max_positions,
        tie_word_embeddings=tie_word_embeddings, bos_token_id=1, eos_token_id=2, pad_token_id=0,
    )


# (hidden, layers) of the ladder: roughly 7M, 27M, 69M, 168M and 537M parameters with an 8,192-token
# vocabulary; shapes like real small models. Each rung reads at least 2.5x the bytes of the one
# before, so "bigger is slower" stands out of the noise of a busy machine.
LADDER_SHAPES = ((256, 4), (512, 6), (768, 8), (1024, 12), (2048, 10))


def ladder_configs(quick=True, max_weight_bytes=None, dtype="float32"):
    """Configs for a ladder of Llama models, small to large.

    `quick=True`: the first three rungs (about 7M to 70M parameters), seconds on any laptop.
    `quick=False`: rungs up to ~540M parameters, stopping where the weights would exceed
    `max_weight_bytes` (default: a quarter of the memory available now).
    """
    from .sizing import BYTES_PER_PARAM, count_parameters, normalize_dtype

    if max_weight_bytes is None:
        max_weight_bytes = available_memory_bytes() // 4
    shapes = LADDER_SHAPES[:3] if quick else LADDER_SHAPES
    configs = []
    for hidden, layers in shapes:
        config = llama_config(hidden, layers)
        if count_parameters(config).total * BYTES_PER_PARAM[normalize_dtype(dtype)] > max_weight_bytes:
            break
        configs.append(config)
    return configs


def available_memory_bytes():
    """Memory available to new allocations now (Linux/macOS); a conservative 4 GiB where unknown."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 4 * 2**30


def random_model(config, dtype="float32", device=None, seed=0):
    """A causal LM with random weights from `config`, in eval mode, on `device` (CPU by default).

    Random weights decode exactly as fast as trained ones: speed depends on shapes and dtype only.
    """
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    dtype = _dtype(dtype)
    with torch.device(device or "cpu"):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    return model.eval()


def random_llama(hidden_size, num_layers, dtype="float32", device=None, seed=0, **config_kwargs):
    """A random-weight Llama (see `llama_config`), ready to time."""
    return random_model(llama_config(hidden_size, num_layers, **config_kwargs), dtype, device, seed)


def random_moe(hidden_size=512, num_layers=4, num_experts=8, experts_per_token=2, expert_size=1024,
               vocab_size=8192, dtype="float32", seed=0):
    """A Mixtral-style MoE and two dense Llamas: same total parameters, and same active ones.

    Returns {"moe": ..., "dense_same_total": ..., "dense_same_active": ...}: the dense twins share the
    MoE's attention and embeddings; their MLP is num_experts × (or experts_per_token ×) one expert.
    """
    from transformers import MixtralConfig

    if not 1 <= experts_per_token <= num_experts:
        raise ValueError(f"experts_per_token must be between 1 and num_experts ({num_experts}), got {experts_per_token}.")
    heads = hidden_size // 64
    moe_config = MixtralConfig(
        hidden_size=hidden_size, num_hidden_layers=num_layers, intermediate_size=expert_size,
        num_attention_heads=heads, num_key_value_heads=heads, head_dim=64, vocab_size=vocab_size,
        num_local_experts=num_experts, num_experts_per_tok=experts_per_token,
        max_position_embeddings=2048, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2,
        pad_token_id=0, sliding_window=None,
    )
    return {
        "moe": random_model(moe_config, dtype, seed=seed),
        "dense_same_total": random_llama(hidden_size, num_layers, dtype, seed=seed, vocab_size=vocab_size,
                                         intermediate_size=num_experts * expert_size),
        "dense_same_active": random_llama(hidden_size, num_layers, dtype, seed=seed, vocab_size=vocab_size,
                                          intermediate_size=experts_per_token * expert_size),
    }


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
    device = _device_of(model)
    prompt = torch.randint(3, vocab, (1, prompt_length), generator=generator).to(device)
    steps = {n: torch.randint(3, vocab, (1, n), generator=generator).to(device) for n in (1, tokens)}

    def one(n):
        cache = DynamicCache(config=model.config)
        with torch.inference_mode():
            model(prompt, past_key_values=cache, use_cache=True)
            _sync(device)
            start = time.perf_counter()
            model(steps[n], past_key_values=cache, use_cache=True)
            _sync(device)
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
        raise ValueError(f"intermediate_size must be a whole number ≥ the model's own ({old}), got {intermediate_size!r}.")
    padded = copy.deepcopy(model)
    padded.config.intermediate_size = intermediate_size
    with torch.no_grad():
        for layer in padded.model.layers:
            mlp = layer.mlp
            for name, grow_rows in (("gate_proj", True), ("up_proj", True), ("down_proj", False)):
                linear = getattr(mlp, name)
                weight = linear.weight
                if grow_rows:
                    new = torch.nn.Linear(weight.shape[1], intermediate_size, bias=linear.bias is not None,
                                          dtype=weight.dtype, device=weight.device)
                    new.weight.zero_()
                    new.weight[:old] = weight
                    if linear.bias is not None:
                        new.bias.zero_()
                        new.bias[:old] = linear.bias
                else:
                    new = torch.nn.Linear(intermediate_size, weight.shape[0], bias=linear.bias is not None,
                                          dtype=weight.dtype, device=weight.device)
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
    from .sizing import BYTES_PER_PARAM, normalize_dtype

    config = model.config
    layers = config.num_hidden_layers
    hidden = config.hidden_size
    dtype_bytes = BYTES_PER_PARAM[normalize_dtype(next(model.parameters()).dtype)]
    others = weight_bytes_per_token(model) - 3 * layers * hidden * config.intermediate_size * dtype_bytes
    width = (weight_bytes - others) // (3 * layers * hidden * dtype_bytes)
    return max(int(width), config.intermediate_size)


# ---------------------------------------------------------------------------------------------
# Assisted generation and prompt lookup


class _ForwardCounter:
    """Counts a model's forward passes (a forward pre-hook) while in a `with` block."""

    def __init__(self, model):
        self.model, self.calls, self._handle = model, 0, None

    def _hook(self, module, args, kwargs):
        self.calls += 1

    def __enter__(self):
        self._handle = self.model.register_forward_pre_hook(self._hook, with_kwargs=True)
        return self

    def __exit__(self, *exc):
        self._handle.remove()


def draft_agreement(draft, sequence, prompt_length):
    """How often the draft's greedy next token equals the token in `sequence` (the target's greedy output).

    One teacher-forced pass of the draft over the target's output: the fraction of positions after
    the prompt where the draft would have proposed exactly the target's token. That is the per-token
    acceptance rate of greedy speculative decoding.
    """
    import torch

    with torch.inference_mode():
        logits = draft(sequence.to(_device_of(draft))).logits[0]
    predicted = logits[prompt_length - 1 : -1].argmax(-1).cpu()
    actual = sequence[0, prompt_length:].cpu()
    return float((predicted == actual).float().mean())


@dataclass
class AssistedResult:
    """Plain greedy against assisted (draft model) or prompt-lookup decoding of the same target."""

    method: str
    greedy_tokens_per_s: float
    assisted_tokens_per_s: float
    speedup: float
    tokens_per_target_pass: float
    acceptance_rate: float | None
    identical: bool
    new_tokens: int

    def as_dict(self):
        return asdict(self)


def compare_assisted(target, input_ids, draft=None, prompt_lookup_tokens=None, new_tokens=64,
                     repeats=3, force_length=False):
    """Measure assisted generation (`draft=`) or prompt lookup (`prompt_lookup_tokens=`) against greedy.

    Both run the same target, prompt and length (`force_length=False`: until the end token, as a
    chat reply does), interleaved repeat by repeat so a change in the
    machine's load hits both alike. Reports decode tokens/s (prefill excluded) of each, the speedup,
    new tokens per target forward pass, the draft's per-token acceptance rate (assisted only), and
    whether the outputs are identical (they must be: greedy verification keeps exactly the target's
    greedy tokens).
    """
    if (draft is None) == (prompt_lookup_tokens is None):
        raise ValueError("pass exactly one of draft= (assisted generation) or prompt_lookup_tokens= (prompt lookup).")
    extra = {"assistant_model": draft} if draft is not None else {"prompt_lookup_num_tokens": prompt_lookup_tokens}
    plain_runs, fast_runs = [], []
    greedy_out = fast_out = None
    for repeat in range(repeats):
        plain, greedy_out = decode_speed(target, input_ids, new_tokens, 1, repeat == 0, force_length)
        fast, fast_out = decode_speed(target, input_ids, new_tokens, 1, repeat == 0, force_length, **extra)
        plain_runs.append(plain.tokens_per_s)
        fast_runs.append(fast.tokens_per_s)
    with _ForwardCounter(target) as counter:
        _timed_generate(target, input_ids, new_tokens, force_length, **extra)
    passes = max(counter.calls - 1, 1)  # the first pass is the prefill
    generated = greedy_out.shape[1] - input_ids.shape[1]
    acceptance = draft_agreement(draft, greedy_out, input_ids.shape[1]) if draft is not None else None
    greedy_rate, fast_rate = statistics.median(plain_runs), statistics.median(fast_runs)
    return AssistedResult(
        method="assisted" if draft is not None else "prompt_lookup",
        greedy_tokens_per_s=greedy_rate,
        assisted_tokens_per_s=fast_rate,
        speedup=fast_rate / greedy_rate,
        tokens_per_target_pass=(generated - 1) / passes,
        acceptance_rate=acceptance,
        identical=bool(greedy_out.shape == fast_out.shape and (greedy_out == fast_out).all()),
        new_tokens=generated,
    )


# ---------------------------------------------------------------------------------------------
# The recommended generation path


def _packed_bf16_supported():
    import torch

    return bool(
        torch.backends.mkldnn.is_available()
        and getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)()
    )


def _packed_linear_class():
    import torch

    class PackedLinear(torch.nn.Module):
        """A bf16 `nn.Linear` whose weight is prepacked once for oneDNN (CPU inference only).

        Stock PyTorch multiplies a bf16 matrix by a vector with a generic kernel that reaches about
        half the memory bandwidth; oneDNN's kernel, given its preferred weight layout once, reaches
        most of it. Same results (to bf16 rounding), no weight copy kept: inference only, not
        trainable, not saveable with `save_pretrained`.
        """

        def __init__(self, linear):
            super().__init__()
            self.in_features, self.out_features = linear.in_features, linear.out_features
            self.packed_weight = torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach(), 1)
            self.bias = None if linear.bias is None else torch.nn.Parameter(linear.bias.detach(), requires_grad=False)

        def forward(self, x):
            return torch.ops.mkldnn._linear_pointwise(x, self.packed_weight, self.bias, "none", [], "")

        def extra_repr(self):
            return f"in_features={self.in_features}, out_features={self.out_features}, prepacked bf16"

    return PackedLinear


def pack_linear_weights(model):
    """Replace the bf16 `nn.Linear` layers of a CPU model by oneDNN-prepacked ones, in place; return it.

    Only plain `torch.nn.Linear` layers in bf16 on the CPU are changed (quantized layers and other
    dtypes are left as they are). Returns the model; `model.chatkit_packed_layers` says how many.
    """
    import torch

    if not _packed_bf16_supported():
        model.chatkit_packed_layers = 0
        return model
    packed_class = _packed_linear_class()
    count = 0
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if (type(child) is torch.nn.Linear and child.weight.dtype == torch.bfloat16
                    and child.weight.device.type == "cpu"):
                setattr(module, name, packed_class(child))
                count += 1
    model.chatkit_packed_layers = count
    return model


def prepare_for_decoding(model, threads=None):
    """chatkit's recommended set-up for fast batch-1 decoding; returns the model (changed in place).

    - CPU: sets the thread count (`set_threads`), and for a bf16 model prepacks its linear layers for
      oneDNN (`pack_linear_weights`), the step that takes bf16 decoding from about a third to most of
      the machine's memory bandwidth. fp32 models keep PyTorch's own kernels (already near it).
    - CUDA: nothing to change on the model; use `fast_generate_kwargs(model)` with `generate`.
    """
    set_threads(threads)
    if _device_of(model).type == "cpu":
        pack_linear_weights(model)
    return model


def fast_generate_kwargs(model):
    """Extra `generate` keywords for chatkit's recommended path on this model's device.

    GPU: a static KV cache plus `torch.compile` ("reduce-overhead": CUDA graphs), which removes
    Python and kernel-launch overhead per token. CPU: none: compiling costs 20-35 s per shape and
    gained little over the prepacked weights of `prepare_for_decoding` in chatkit's measurements
    (see benchmarks/RESULTS.md).
    """
    if _device_of(model).type == "cuda":
        return static_compile_kwargs()
    return {}


def static_compile_kwargs(compile_on_cpu=False):
    """`generate` keywords for a static KV cache + torch.compile; `compile_on_cpu=True` allows it on a CPU.

    transformers compiles automatically only on accelerators; on a CPU its CompileConfig needs the
    private flag `_compile_all_devices`.
    """
    from transformers import CompileConfig

    config = CompileConfig(fullgraph=False, dynamic=False)
    if compile_on_cpu:
        config._compile_all_devices = True
    return {"cache_implementation": "static", "compile_config": config}
