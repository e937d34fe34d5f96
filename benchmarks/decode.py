"""Decode speed at batch 1: the plain pipeline, raw `model.generate`, and chatkit's recommended path.

All run the same random-weight Llama (about 200M parameters by default: hidden 1024, 16 layers), the
same chat prompt (the embedded model's chat template and tokenizer) and the same number of new
tokens, greedy, forced to full length. Decode tokens/s excludes the prompt: (N - 1) / (t(N) - t(1)).
Every repeat runs every method once, interleaved (the order rotated), with a memory-bandwidth
measurement, so a change in the machine's load hits all of them alike; medians are reported, and
ratios are paired within each repeat. Prints a table and writes JSON.

    python benchmarks/decode.py                         # CPU, bf16, ~200M parameters
    python benchmarks/decode.py --dtype float32 --threads 1 --json out.json
    python benchmarks/decode.py --compile               # also static cache + torch.compile on the CPU
    python benchmarks/decode.py --gpu                   # 8B-shaped bf16 model on a CUDA GPU

Methods (CPU):
    pipeline          transformers.pipeline("text-generation")(chat)
    generate          model.generate(input_ids) on the model as loaded
    chatkit_reply     chatkit.reply(model, tokenizer, chat) on the same model: chatkit's own overhead
    chatkit_fast      chatkit.fast_decoding.prepare_for_decoding(model) + chatkit.reply(..., **fast_generate_kwargs)
    static_compile    (--compile) generate with a static cache + torch.compile

Methods (--gpu; Llama-3-8B shapes, random bf16 weights):
    generate          eager model.generate (also timed before anything is compiled, and with 1 CPU thread)
    chatkit_fast      chatkit's recommended path: fast_generate_kwargs (static cache, fullgraph compile)
    compiled_forward  a greedy loop around the compiled forward alone (what generate's own loop costs)
plus the matrix kernels alone (speed.matrix_time_per_token) and a kernel profile of chatkit_fast.
"""

import argparse
import copy
import datetime
import json
import os
import statistics
import sys
import time

import torch
from common import cpu_name, timed

import chatkit
from chatkit import fast_decoding, machine, speed, toy_models


def cpu_methods(model, tokenizer, chat, with_compile):
    """{name: function(new_tokens) -> None} for each method, all on the same weights and prompt."""
    from transformers import pipeline

    inputs = tokenizer.apply_chat_template(chat, add_generation_prompt=True, return_dict=True, return_tensors="pt")
    pipe = pipeline("text-generation", model=model, tokenizer=tokenizer)
    fast_model = fast_decoding.prepare_for_decoding(copy.deepcopy(model))
    fast_kwargs = fast_decoding.fast_generate_kwargs(fast_model)

    def force(n):
        return dict(max_new_tokens=n, min_new_tokens=n, do_sample=False)

    methods = {
        "pipeline": lambda n: pipe(chat, **force(n)),
        "generate": lambda n: model.generate(**inputs, **force(n)),
        "chatkit_reply": lambda n: chatkit.reply(model, tokenizer, chat, max_new_tokens=n, min_new_tokens=n),
        "chatkit_fast": lambda n: chatkit.reply(
            fast_model, tokenizer, chat, max_new_tokens=n, min_new_tokens=n, **fast_kwargs
        ),
    }
    if with_compile:
        compiled = fast_decoding.static_compile_kwargs(compile_on_cpu=True)
        methods["static_compile"] = lambda n: model.generate(**inputs, **force(n), **compiled)
    extra = {
        "prompt_tokens": int(inputs["input_ids"].shape[1]),
        "packed_layers": getattr(fast_model, "chatkit_packed_layers", 0),
    }
    return methods, extra


def gpu_methods(model, new_tokens, device="cuda"):
    """{name: function(new_tokens)} on a CUDA model: eager, chatkit's path, the compiled forward alone.

    The compiled methods keep one static cache of a fixed length (reset before each call), so a call
    for 1 token and one for `new_tokens` replay the same compiled graph instead of compiling twice.
    (transformers' default CompileConfig is left out: alternating two compile configs on one model
    makes transformers re-wrap its compiled forward at every switch.)
    """
    from transformers import StaticCache

    vocab = model.config.vocab_size
    input_ids = torch.randint(3, vocab, (1, 32), generator=torch.Generator().manual_seed(0)).to(device)
    mask = torch.ones_like(input_ids)
    max_len = input_ids.shape[1] + new_tokens

    def force(n):
        return dict(max_new_tokens=n, min_new_tokens=n, do_sample=False)

    fast = fast_decoding.fast_generate_kwargs(model)
    cache = StaticCache(config=model.config, max_cache_len=max_len)
    fast_with_cache = {k: v for k, v in fast.items() if k != "cache_implementation"}

    def chatkit_fast(n):
        cache.reset()
        return model.generate(input_ids, attention_mask=mask, past_key_values=cache, **force(n), **fast_with_cache)

    methods = {
        "generate": lambda n: model.generate(input_ids, attention_mask=mask, **force(n)),
        "chatkit_fast": chatkit_fast,
        "compiled_forward": compiled_forward_loop(model, input_ids, max_len),
    }
    return methods, {"prompt_tokens": 32, "fast_kwargs": repr(fast)}


def compiled_forward_loop(model, input_ids, max_len, mode="reduce-overhead"):
    """A greedy loop around the compiled forward pass alone (no `generate`): what `generate` itself costs.

    One static cache, reset before each run, so the CUDA graph replays on the same buffers.
    """
    from transformers import StaticCache

    cache = StaticCache(config=model.config, max_cache_len=max_len)
    step = torch.compile(model.forward, mode=mode, fullgraph=True)
    device = input_ids.device

    def run(n):
        cache.reset()
        position = torch.arange(input_ids.shape[1], device=device)
        logits = model(input_ids, past_key_values=cache, cache_position=position, use_cache=True).logits
        token = logits[:, -1:].argmax(-1)
        for i in range(n - 1):
            position = torch.tensor([input_ids.shape[1] + i], device=device)
            token = (
                step(token, past_key_values=cache, cache_position=position, use_cache=True).logits[:, -1:].argmax(-1)
            )
        return token

    return run


def kernel_profile(fn, new_tokens):
    """Where a token's time goes on the GPU: matrix kernels, attention, everything else, and idle time.

    Profiles one call of `fn(new_tokens)` (after warm-up) with torch.profiler; times are per decoded token.
    """
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof, torch.inference_mode():
        fn(new_tokens)
        speed.synchronize("cuda" if torch.cuda.is_available() else "cpu")
    wall = time.perf_counter() - start
    kinds = {"matrix": 0.0, "attention": 0.0, "other": 0.0}
    top = []
    for event in prof.key_averages():
        if event.device_type != DeviceType.CUDA:
            continue
        us = getattr(event, "device_time_total", None) or getattr(event, "cuda_time_total", 0)
        name = event.key.lower()
        kind = (
            "matrix"
            if any(k in name for k in ("gemv", "gemm", "cutlass", "nvjet", "sm90_", "cublas", "splitk"))
            else "attention"
            if any(k in name for k in ("flash", "attention", "fmha", "sdpa"))
            else "other"
        )
        kinds[kind] += us
        top.append((us, event.key[:80], event.count))
    per_token = {f"{k}_ms": round(v / 1e3 / new_tokens, 3) for k, v in kinds.items()}
    busy = sum(kinds.values()) / 1e3 / new_tokens
    top.sort(reverse=True)
    return {
        **per_token,
        "gpu_busy_ms": round(busy, 3),
        "wall_ms": round(1e3 * wall / new_tokens, 3),
        "idle_ms": round(1e3 * wall / new_tokens - busy, 3),
        "top_kernels": [(name, count, round(us / 1e3 / new_tokens, 3)) for us, name, count in top[:8]],
    }


def run(methods, new_tokens, repeats, bandwidth_device, warmups=1):
    """Interleaved repeats: each repeat measures bandwidth, then t(1) and t(N) of every method (order rotated)."""
    for fn in methods.values():  # warm-up (and compilation, per length) outside the timed repeats
        for _ in range(warmups):
            timed(lambda: fn(1))
            timed(lambda: fn(new_tokens))
    firsts = {name: [] for name in methods}
    totals = {name: [] for name in methods}
    copies, reads = [], []
    names = list(methods)
    for repeat in range(repeats):
        size = 1024 if bandwidth_device == "cuda" else 256  # MiB: far above the caches (GPU L2: ~50 MB)
        bw = speed.measure_bandwidth(size_mib=size, repeats=3, device=bandwidth_device)
        copies.append(bw.copy_gb_s)
        reads.append(bw.read_gb_s)
        for name in names[repeat % len(names) :] + names[: repeat % len(names)]:  # rotate who goes first
            fn = methods[name]
            firsts[name].append(timed(lambda: fn(1)))
            totals[name].append(timed(lambda: fn(new_tokens)))
    rates = {}
    for name in methods:
        per_repeat = [(new_tokens - 1) / max(t - f, 1e-9) for f, t in zip(firsts[name], totals[name])]
        rates[name] = {
            "decode_tokens_per_s": statistics.median(per_repeat),
            "per_repeat": per_repeat,
            "first_token_s": statistics.median(firsts[name]),
            "total_s": statistics.median(totals[name]),
            "total_s_per_repeat": totals[name],
        }
    return rates, {
        "copy_gb_s": statistics.median(copies),
        "read_gb_s": statistics.median(reads),
        "copy_gb_s_per_repeat": copies,
    }


def gpu_checks(model, new_tokens, device="cuda"):
    """Eager `generate` before anything is compiled, with torch's threads and with one; the matrix kernels alone."""
    ids = torch.randint(3, model.config.vocab_size, (1, 32), generator=torch.Generator().manual_seed(0)).to(device)
    eager = {
        "generate": lambda n: model.generate(
            ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, min_new_tokens=n, do_sample=False
        )
    }
    threads = torch.get_num_threads()
    before, _ = run(eager, new_tokens, 3, device)
    torch.set_num_threads(1)
    one_thread, _ = run(eager, new_tokens, 3, device)
    torch.set_num_threads(threads)
    matrix_s = speed.matrix_time_per_token(model)
    return {
        "eager_before_compile": {
            f"{threads}_threads_tok_s": round(before["generate"]["decode_tokens_per_s"], 1),
            "1_thread_tok_s": round(one_thread["generate"]["decode_tokens_per_s"], 1),
        },
        "matrix_kernels_alone": {
            "ms_per_token": round(1e3 * matrix_s, 3),
            "gb_s": round(speed.weight_bytes_per_token(model) / matrix_s / 1e9),
        },
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32", "float16"])
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--threads", type=int, default=None, help=f"CPU threads (default: ${machine.THREADS_ENV_VAR} or torch's)"
    )
    parser.add_argument("--compile", action="store_true", help="also time static cache + torch.compile on the CPU")
    parser.add_argument("--gpu", action="store_true", help="8B-shaped random bf16 model on CUDA (needs a GPU)")
    parser.add_argument("--json", help="write the results here as JSON")
    args = parser.parse_args(argv)

    chatkit.quiet()
    threads = machine.set_threads(args.threads)
    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu_name(),
        "threads": threads,
        "load_average": os.getloadavg(),
        "torch": torch.__version__,
        "transformers": chatkit.environment.package_versions(["transformers"])["transformers"],
        "new_tokens": args.new_tokens,
        "repeats": args.repeats,
    }
    if args.gpu:
        if not torch.cuda.is_available():
            print("--gpu: no CUDA GPU visible to torch; nothing measured.", file=sys.stderr)
            return 2
        # Llama-3-8B's shapes, random bf16 weights built directly on the GPU
        config = toy_models.llama_config(4096, 32, vocab_size=128256, intermediate_size=14336, head_dim=128, kv_heads=8)
        model = toy_models.random_model(config, "bfloat16", device="cuda")
        result["gpu"] = torch.cuda.get_device_name(0)
        result.update(gpu_checks(model, args.new_tokens))
        methods, extra = gpu_methods(model, args.new_tokens)
        device = "cuda"
    else:
        tokenizer = chatkit.load_tokenizer(chatkit.embedded_model_path())
        config = toy_models.llama_config(args.hidden, args.layers, vocab_size=len(tokenizer))
        model = toy_models.random_model(config, args.dtype)
        chat = [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Explain in one paragraph why decoding is limited by memory bandwidth."},
        ]
        methods, extra = cpu_methods(model, tokenizer, chat, args.compile)
        device = "cpu"
    result.update(extra)
    bytes_per_token = speed.weight_bytes_per_token(model)
    result.update(
        model_parameters=sum(p.numel() for p in model.parameters()),
        dtype=str(next(model.parameters()).dtype).replace("torch.", ""),
        weight_bytes_per_token=bytes_per_token,
    )
    rates, bandwidth = run(methods, args.new_tokens, args.repeats, device)
    result["bandwidth"] = bandwidth
    for name, r in rates.items():
        r["gb_s"] = r["decode_tokens_per_s"] * bytes_per_token / 1e9
        r["fraction_of_copy_bandwidth"] = r["gb_s"] / bandwidth["copy_gb_s"]
    result["methods"] = rates
    # ratios paired within each repeat (same moment, same load), then the median over repeats
    base = rates["generate"]["per_repeat"]
    result["ratios_to_generate"] = {
        name: statistics.median(m / g for m, g in zip(r["per_repeat"], base)) for name, r in rates.items()
    }
    if "chatkit_reply" in rates:
        # overhead of chatkit's wrapper: its time per token relative to raw generate on the same model
        result["chatkit_overhead"] = statistics.median(
            g / m - 1 for m, g in zip(rates["chatkit_reply"]["per_repeat"], base)
        )
        # and end to end (template, tokenizing, prefill, decoding, detokenizing: the whole call)
        result["chatkit_overhead_end_to_end"] = statistics.median(
            c / g - 1
            for c, g in zip(rates["chatkit_reply"]["total_s_per_repeat"], rates["generate"]["total_s_per_repeat"])
        )
    if args.gpu:
        try:
            result["profile"] = kernel_profile(methods["chatkit_fast"], args.new_tokens)
        except Exception as error:  # the profiler's event names differ between torch versions
            result["profile"] = f"failed: {type(error).__name__}: {error}"
    result["load_average_after"] = os.getloadavg()

    print(
        f"{result['model_parameters'] / 1e6:.0f}M parameters, {result['dtype']}, "
        f"{bytes_per_token / 1e6:.0f} MB of weights per token, {threads} thread(s), "
        f"copy bandwidth {bandwidth['copy_gb_s']:.1f} GB/s (median of repeats)"
    )
    print(
        f"{'method':<16} {'tok/s':>8} {'GB/s':>7} {'% copy bw':>10} {'÷ generate':>11}"
    )  # ÷ generate: median of per-repeat ratios
    for name, r in rates.items():
        print(
            f"{name:<16} {r['decode_tokens_per_s']:8.1f} {r['gb_s']:7.1f} "
            f"{100 * r['fraction_of_copy_bandwidth']:9.0f}% {result['ratios_to_generate'][name]:10.2f}x"
        )
    if "chatkit_overhead" in result:
        print(
            f"chatkit.reply overhead over raw generate: {100 * result['chatkit_overhead']:+.1f}% per decoded token, "
            f"{100 * result['chatkit_overhead_end_to_end']:+.1f}% per whole call"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
