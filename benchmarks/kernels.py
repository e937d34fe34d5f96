"""Matrix-vector kernels at batch 1: the GB/s each dtype and kernel reads, against the copy bandwidth.

Decoding one token is a chain of matrix-vector products, so the kernel that multiplies a weight matrix
by one vector decides how much of the memory bandwidth decoding can use. This times, on the CPU, a set
of weight matrices far larger than the caches (default 16 × 4096 × 2048):

    fp32 F.linear           PyTorch's default (MKL)
    bf16 F.linear           PyTorch's stock bf16 kernel
    bf16 oneDNN prepacked   the weight reordered once for oneDNN (what `chatkit.fast_decoding.prepare_for_decoding` does)
    fp16 F.linear

    python benchmarks/kernels.py --threads 1 --json kernels.json
"""

import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

from chatkit import fast_decoding, machine, speed


def gb_per_s(fn, nbytes, repeats):
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return nbytes / min(times) / 1e9  # the best repeat: interference only ever slows a run down


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--matrices", type=int, default=16)
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--cols", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    threads = machine.set_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    weights32 = [torch.randn(args.rows, args.cols, generator=generator) for _ in range(args.matrices)]
    x32 = torch.randn(1, args.cols, generator=generator)
    results = {}
    with torch.inference_mode():
        for dtype in (torch.float32, torch.bfloat16, torch.float16):
            weights = [w.to(dtype) for w in weights32]
            x = x32.to(dtype)
            nbytes = sum(w.numel() * w.element_size() for w in weights)
            name = str(dtype).replace("torch.", "")
            results[f"{name} F.linear"] = gb_per_s(lambda: [F.linear(x, w) for w in weights], nbytes, args.repeats)
            if dtype == torch.bfloat16 and fast_decoding._packed_bf16_supported():
                packed = [torch.ops.mkldnn._reorder_linear_weight(w, 1) for w in weights]
                results[f"{name} oneDNN prepacked"] = gb_per_s(
                    lambda: [torch.ops.mkldnn._linear_pointwise(x, p, None, "none", [], "") for p in packed],
                    nbytes,
                    args.repeats,
                )
        del weights32
        bandwidth = speed.measure_bandwidth(size_mib=256, repeats=5)
    print(f"{threads} thread(s); copy {bandwidth.copy_gb_s:.1f} GB/s, read {bandwidth.read_gb_s:.1f} GB/s")
    print(f"{'kernel':<24} {'GB/s':>6} {'% of copy':>10}")
    for name, value in results.items():
        print(f"{name:<24} {value:6.1f} {100 * value / bandwidth.copy_gb_s:9.0f}%")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "threads": threads,
                    "load_average": os.getloadavg(),
                    "bandwidth": bandwidth.as_dict(),
                    "kernels_gb_s": results,
                },
                f,
                indent=2,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
