"""How fast does llama.cpp decode this model here? Find its `llama-bench`, run it, read the result.

llama.cpp (and Ollama, built on it) is what a learner on a laptop would pick instead of transformers.
Its `llama-bench` times decoding of a GGUF file: `-p 0 -n 64` decodes 64 tokens after an empty
prompt. chatkit does not ship llama.cpp; `benchmarks/peer.py` builds it from source and converts a
transformers folder to GGUF, and notebook 05 runs this module when a `llama-bench` is found.

Example:
    >>> cmd = bench_command("model-f32.gguf", binary="llama-bench", threads=1, new_tokens=64, repeats=3)
    >>> " ".join(cmd)
    'llama-bench -m model-f32.gguf -p 0 -n 64 -t 1 -r 3 -o json'
"""

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

BENCH_ENV_VAR = "CHATKIT_LLAMA_BENCH"
GGUF_ENV_VAR = "CHATKIT_GGUF"
HOW_TO_GET = (
    "No llama.cpp comparison here: it needs llama.cpp's llama-bench ($CHATKIT_LLAMA_BENCH, or on PATH)\n"
    "and a GGUF file of this model ($CHATKIT_GGUF). To get both:\n"
    "  - from this repository: python benchmarks/peer.py builds llama-bench from source (about 6 minutes\n"
    "    on 2 cores), converts the model to GGUF (f32 and bf16), compares, and prints the two paths;\n"
    "  - or install llama.cpp (its releases, `brew install llama.cpp`: llama-bench lands on PATH) and\n"
    "    convert the model with its convert_hf_to_gguf.py."
)


class LlamaBenchError(RuntimeError):
    """llama-bench failed or printed something that is not its JSON report."""


@dataclass
class BenchResult:
    """One llama-bench measurement: decode tokens/s (mean and spread over its repeats) and what ran."""

    tokens_per_s: float
    stddev: float
    samples: list
    model_type: str
    model_bytes: int
    threads: int
    backend: str

    def __str__(self):
        return (
            f"llama.cpp {self.model_type}: {self.tokens_per_s:.1f} ± {self.stddev:.1f} tok/s "
            f"({self.threads} thread{'s' if self.threads != 1 else ''}, {self.backend})"
        )


def find_llama_bench(candidates=()):
    """The path of a `llama-bench` binary, or None: $CHATKIT_LLAMA_BENCH, then `candidates`, then PATH.

    A $CHATKIT_LLAMA_BENCH that names no runnable file raises FileNotFoundError (a typo should not
    silently fall back to another binary).
    """
    named = os.environ.get(BENCH_ENV_VAR, "").strip()
    if named:
        if not (Path(named).is_file() and os.access(named, os.X_OK)):
            raise FileNotFoundError(
                f"{BENCH_ENV_VAR}={named!r} is not an executable file; point it at "
                "llama.cpp's llama-bench binary, or unset it."
            )
        return named
    for candidate in candidates:
        if Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("llama-bench")


def bench_command(gguf, binary, threads=1, new_tokens=64, repeats=3):
    """The llama-bench command line that decodes `new_tokens` after an empty prompt, JSON out."""
    return [
        str(binary),
        "-m",
        str(gguf),
        "-p",
        "0",
        "-n",
        str(new_tokens),
        "-t",
        str(threads),
        "-r",
        str(repeats),
        "-o",
        "json",
    ]


def parse_report(text):
    """The decode measurement in llama-bench's JSON report (`-o json`) as a BenchResult."""
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as error:
        raise LlamaBenchError(
            f"llama-bench printed no JSON report ({error}); first line: {text.strip().splitlines()[:1]}"
        ) from None
    decode = [row for row in rows if isinstance(row, dict) and row.get("n_gen", 0) > 0 and row.get("n_prompt") == 0]
    if not decode:
        raise LlamaBenchError("llama-bench's report has no decode row (n_prompt 0, n_gen > 0): run it with -p 0 -n N.")
    row = decode[0]
    return BenchResult(
        tokens_per_s=float(row["avg_ts"]),
        stddev=float(row.get("stddev_ts", 0.0)),
        samples=[float(s) for s in row.get("samples_ts", [])],
        model_type=row.get("model_type", ""),
        model_bytes=int(row.get("model_size", 0)),
        threads=int(row.get("n_threads", 0)),
        backend=row.get("backends") or row.get("backend", ""),
    )


def llama_bench(gguf, binary=None, threads=1, new_tokens=64, repeats=3, timeout=600):
    """Decode speed of the GGUF file `gguf` under llama.cpp: run llama-bench and return a BenchResult."""
    binary = binary or find_llama_bench()
    if binary is None:
        raise FileNotFoundError(HOW_TO_GET)
    if not Path(gguf).is_file():
        raise FileNotFoundError(f"no GGUF file at {gguf}: convert the model first (benchmarks/peer.py does).")
    done = subprocess.run(
        bench_command(gguf, binary, threads, new_tokens, repeats), capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise LlamaBenchError(f"llama-bench exited with {done.returncode}: {done.stderr.strip()[-500:]}")
    return parse_report(done.stdout)
