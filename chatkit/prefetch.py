"""Prepare a room without wifi: `python -m chatkit prefetch [MODEL ...]` downloads models ahead of time.

For each model (default: the course's Hub default; `--course`: every model the notebooks use online, the
ones that call tools, think and see too) it lists the files transformers needs and their
sizes, asks before downloading the total (`--yes` skips the question, `--dry-run` stops there),
downloads them into the Hugging Face cache with huggingface_hub, then checks that each model loads with
`HF_HUB_OFFLINE=1`, in a fresh Python, as a learner's notebook would. Copy the cache folder
(`hf cache` / `$HF_HOME`, usually ~/.cache/huggingface) to the learners' machines.

Example:
    >>> wanted("model.safetensors"), wanted("onnx/model.onnx")
    (True, False)
"""

import argparse
import fnmatch
import os
import subprocess
import sys

from .formatting import format_bytes
from .hub import (
    DEFAULT_HUB_MODEL,
    DEFAULT_THINKING_MODEL,
    DEFAULT_TOOLS_MODEL,
    DEFAULT_VISION_MODEL,
    hub_offline_requested,
)

COURSE_MODELS = (DEFAULT_HUB_MODEL, DEFAULT_TOOLS_MODEL, DEFAULT_THINKING_MODEL, DEFAULT_VISION_MODEL)
# How a learner's notebook loads it (a model that sees, with its processor: chatkit.load_model does both).
LOAD = "import sys, chatkit; chatkit.quiet(); chatkit.load_model(sys.argv[1], device_map=None)"

# What from_pretrained reads: weights, configs, tokenizer files, the chat template.
PATTERNS = ("*.safetensors", "*.json", "*.jinja", "*.txt", "*.model", "*.tiktoken")


def wanted(filename):
    """True for a file of a Hub repository that loading with transformers needs (top-level only)."""
    return "/" not in filename and any(fnmatch.fnmatch(filename, pattern) for pattern in PATTERNS)


def files_to_fetch(name):
    """[(filename, bytes)] of `name`'s files that transformers needs, from the Hub's file list."""
    from huggingface_hub import HfApi

    info = HfApi().model_info(name, files_metadata=True)
    return [(s.rfilename, s.size or 0) for s in info.siblings if wanted(s.rfilename)]


def download(name):
    """Download `name`'s wanted files into the Hugging Face cache; return the snapshot folder."""
    from huggingface_hub import snapshot_download

    return snapshot_download(name, allow_patterns=list(PATTERNS))


def loads_offline(name, timeout=600):
    """(True, "") when `name` loads with HF_HUB_OFFLINE=1 in a fresh Python; else (False, the error's last line)."""
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    done = subprocess.run([sys.executable, "-c", LOAD, name], env=env, capture_output=True, text=True, timeout=timeout)
    last = (done.stderr.strip().splitlines() or [""])[-1]
    return done.returncode == 0, last


def main(argv=None, ask=input):
    parser = argparse.ArgumentParser(prog="python -m chatkit prefetch", description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help=f"Hub model ids (default: {DEFAULT_HUB_MODEL})")
    parser.add_argument(
        "--course", action="store_true", help="every model the notebooks use online: " + ", ".join(COURSE_MODELS)
    )
    parser.add_argument("--dry-run", action="store_true", help="list the files and sizes, download nothing")
    parser.add_argument("--yes", action="store_true", help="download without asking")
    args = parser.parse_args(argv)
    if hub_offline_requested():
        print(
            "HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE is set: prefetch needs the Hub. Unset it (for this "
            "command) and try again.",
            file=sys.stderr,
        )
        return 2
    plan = {}
    names = args.models or ([] if args.course else [DEFAULT_HUB_MODEL])
    for name in dict.fromkeys(names + (list(COURSE_MODELS) if args.course else [])):
        try:
            plan[name] = files_to_fetch(name)
        except Exception as error:  # noqa: BLE001 - the Hub's own message says what was wrong
            print(
                f"{name}: cannot list its files ({type(error).__name__}: {error}). Check the name, your "
                "connection, and for a gated model your access and token (hf auth login).",
                file=sys.stderr,
            )
            return 1
        size = sum(b for _, b in plan[name])
        print(f"{name}: {len(plan[name])} files, {format_bytes(size)}")
    total = sum(b for files in plan.values() for _, b in files)
    print(f"total: {format_bytes(total)}")
    if args.dry_run:
        return 0
    if not args.yes and ask(
        f"Download {format_bytes(total)} into the Hugging Face cache? [y/N] "
    ).strip().lower() not in {"y", "yes"}:
        print("nothing downloaded")
        return 1
    failed = []
    for name in plan:
        folder = download(name)
        ok, error = loads_offline(name)
        print(f"{name}: downloaded to {folder}; " + ("loads offline" if ok else f"does NOT load offline: {error}"))
        if not ok:
            failed.append(name)
    return 1 if failed else 0
