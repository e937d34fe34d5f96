"""Assisted generation and prompt lookup against plain greedy decoding, at identical output.

The target is chatkit's embedded chat model with its MLPs zero-padded (`chatkit.toy_models.zero_pad_mlp`):
the same function, so the embedded draft (trained to agree with the chat model) agrees with it just
as well, but each token reads hundreds of MB, as a real model's does: the target is memory-bound.
Three chat prompts are decoded greedily and with the draft (`assistant_model=`), an input-grounded
prompt greedily and with prompt lookup (`prompt_lookup_num_tokens=`), interleaved repeat by repeat;
replies end at the model's end token; decode tokens/s excludes the prompt.
Prints a table and writes JSON.

    python benchmarks/assisted.py                          # target ~400 MB/token, bf16 prepacked
    python benchmarks/assisted.py --dtype float32 --target-mb 800 --threads 1 --json out.json

The bf16 target runs on chatkit's recommended path (`prepare_for_decoding`: oneDNN-prepacked
weights), whose pass over the k + 1 tokens to verify costs little more than over one; PyTorch's fp32
kernel costs about twice as much for 6 rows as for 1 on CPUs, which eats into the speedup.
"""

import argparse
import datetime
import json
import os
import statistics
import sys

import torch

import chatkit
from chatkit import assisted, fast_decoding, machine, speed, toy_models

# Chats in the embedded model's small world (it was trained on this course's topics).
CHATS = [
    [{"role": "user", "content": "What is assisted generation?"}],
    [{"role": "user", "content": "Hey, can you tell me any fun things to do in Paris?"}],
    [
        {"role": "system", "content": "You are a pirate."},
        {"role": "user", "content": "Why is decoding limited by memory bandwidth?"},
    ],
]

# An input-grounded prompt: the reply can copy from it, which prompt lookup exploits.
GROUNDED = [
    {
        "role": "user",
        "content": "What is a KV cache? A KV cache keeps the keys and values of earlier "
        "tokens so the model does not compute them again for every new token. What is a KV cache?",
    }
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target-mb", type=int, default=400, help="weight MB the padded target reads per token")
    parser.add_argument("--chat", default=None, help="chat model folder (default: chatkit's embedded model)")
    parser.add_argument("--draft", default=None, help="draft model folder (default: chatkit's embedded draft)")
    parser.add_argument("--new-tokens", type=int, default=96, help="at most this many new tokens per reply")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--lookup-tokens", type=int, default=10)
    parser.add_argument(
        "--dtype",
        default="bfloat16",
        choices=["float32", "bfloat16"],
        help="target dtype; bfloat16 also gets chatkit's prepacked CPU kernels (prepare_for_decoding)",
    )
    parser.add_argument("--json")
    args = parser.parse_args(argv)

    chatkit.quiet()
    threads = machine.set_threads(args.threads)
    draft_path = args.draft or chatkit.embedded_draft_path()
    if not os.path.isdir(draft_path):
        print(f"no draft model at {chatkit.describe_model(draft_path)}; pass --draft FOLDER", file=sys.stderr)
        return 2
    chat_model, tokenizer = chatkit.load_model(args.chat or chatkit.embedded_model_path(), device_map=None)
    draft, _ = chatkit.load_model(draft_path, device_map=None)
    # the width that gives --target-mb in the chosen dtype (fp32 weights are twice bf16's)
    scale = 2 if args.dtype == "bfloat16" else 1
    width = toy_models.intermediate_size_for(chat_model, scale * args.target_mb * 10**6)
    target = toy_models.zero_pad_mlp(chat_model, width)
    if args.dtype == "bfloat16":
        target = fast_decoding.prepare_for_decoding(target.to(torch.bfloat16), threads=threads)
    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "threads": threads,
        "load_average": os.getloadavg(),
        "target_dtype": args.dtype,
        "target_weight_bytes_per_token": speed.weight_bytes_per_token(target),
        "draft_weight_bytes_per_token": speed.weight_bytes_per_token(draft),
        "chat_model_parameters": sum(p.numel() for p in chat_model.parameters()),
        "draft_parameters": sum(p.numel() for p in draft.parameters()),
        "target_intermediate_size": width,
        "runs": [],
    }
    print(
        f"target: {chatkit.describe_model(args.chat or chatkit.embedded_model_path())} zero-padded to {result['target_weight_bytes_per_token'] / 1e6:.0f} MB/token; "
        f"draft {result['draft_parameters'] / 1e6:.2f}M parameters; {threads} thread(s)"
    )
    print(
        f"{'method':<14} {'prompt':<44} {'new':>4} {'greedy':>7} {'fast':>7} {'speedup':>8} "
        f"{'tok/pass':>8} {'accept':>7} {'same':>5}"
    )
    jobs = [("assisted", c) for c in CHATS] + [("prompt_lookup", GROUNDED)]
    for method, chat in jobs:
        ids = tokenizer.apply_chat_template(chat, add_generation_prompt=True, return_dict=True, return_tensors="pt")[
            "input_ids"
        ]
        kwargs = {"draft": draft} if method == "assisted" else {"prompt_lookup_tokens": args.lookup_tokens}
        r = assisted.compare_assisted(target, ids, new_tokens=args.new_tokens, repeats=args.repeats, **kwargs)
        row = r.as_dict() | {"prompt": chat[-1]["content"]}
        result["runs"].append(row)
        accept = "-" if r.acceptance_rate is None else f"{r.acceptance_rate:.0%}"
        print(
            f"{method:<14} {chat[-1]['content'][:44]:<44} {r.new_tokens:>4} {r.greedy_tokens_per_s:7.1f} "
            f"{r.assisted_tokens_per_s:7.1f} {r.speedup:7.2f}x {r.tokens_per_target_pass:8.2f} "
            f"{accept:>7} {str(r.identical):>5}"
        )
    speedups = [r["speedup"] for r in result["runs"] if r["method"] == "assisted"]
    result["assisted_speedup_median"] = statistics.median(speedups)
    result["all_identical"] = all(r["identical"] for r in result["runs"])
    result["load_average_after"] = os.getloadavg()
    print(
        f"assisted speedup (median over prompts): {result['assisted_speedup_median']:.2f}x; "
        f"outputs identical to greedy: {result['all_identical']}"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0 if result["all_identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
