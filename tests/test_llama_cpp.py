"""chatkit.llama_cpp: finding llama-bench, running it, reading its JSON report (a stand-in binary)."""

import json
import stat

import pytest

from chatkit import llama_cpp

REPORT = [
    {
        "model_type": "llama 256M all F32",
        "model_size": 538060032,
        "n_threads": 1,
        "backends": "CPU",
        "n_prompt": 0,
        "n_gen": 64,
        "avg_ts": 24.19,
        "stddev_ts": 0.06,
        "samples_ts": [24.23, 24.14],
    }
]


def fake_bench(tmp_path, body):
    """An executable that records its arguments and then runs `body` (shell)."""
    path = tmp_path / "llama-bench"
    path.write_text(f'#!/bin/sh\necho "$@" > {tmp_path / "args"}\n{body}\n')
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


@pytest.fixture
def gguf(tmp_path):
    path = tmp_path / "model-f32.gguf"
    path.write_bytes(b"GGUF")
    return path


def test_runs_llama_bench_and_reads_the_decode_row(tmp_path, gguf, monkeypatch):
    report = tmp_path / "report.json"
    report.write_text(json.dumps([dict(REPORT[0], n_prompt=512, n_gen=0, avg_ts=900.0)] + REPORT))
    binary = fake_bench(tmp_path, f"cat {report}")
    monkeypatch.setenv(llama_cpp.BENCH_ENV_VAR, str(binary))
    result = llama_cpp.llama_bench(gguf, threads=1, new_tokens=64, repeats=2)
    assert (result.tokens_per_s, result.samples, result.threads) == (24.19, [24.23, 24.14], 1)
    assert (tmp_path / "args").read_text().split() == [
        "-m",
        str(gguf),
        "-p",
        "0",
        "-n",
        "64",
        "-t",
        "1",
        "-r",
        "2",
        "-o",
        "json",
    ]
    assert str(result) == "llama.cpp llama 256M all F32: 24.2 ± 0.1 tok/s (1 thread, CPU)"


def test_a_failing_or_silent_llama_bench_says_what_happened(tmp_path, gguf):
    failing = fake_bench(tmp_path, "echo 'error loading model' >&2; exit 3")
    with pytest.raises(llama_cpp.LlamaBenchError, match="exited with 3: error loading model"):
        llama_cpp.llama_bench(gguf, binary=failing)
    with pytest.raises(llama_cpp.LlamaBenchError, match="no JSON report"):
        llama_cpp.parse_report("| model | size |")
    with pytest.raises(llama_cpp.LlamaBenchError, match="no decode row"):
        llama_cpp.parse_report(json.dumps([dict(REPORT[0], n_gen=0, n_prompt=512)]))


def test_finding_llama_bench(tmp_path, gguf, monkeypatch):
    monkeypatch.delenv(llama_cpp.BENCH_ENV_VAR, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert llama_cpp.find_llama_bench() is None
    with pytest.raises(FileNotFoundError, match="needs llama.cpp.s llama-bench"):
        llama_cpp.llama_bench(gguf)
    binary = fake_bench(tmp_path, "true")
    assert llama_cpp.find_llama_bench([tmp_path / "missing", binary]) == str(binary)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert llama_cpp.find_llama_bench() == str(binary)
    monkeypatch.setenv(llama_cpp.BENCH_ENV_VAR, str(tmp_path / "typo"))
    with pytest.raises(FileNotFoundError, match="is not an executable file"):
        llama_cpp.find_llama_bench()


def test_a_missing_gguf_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no GGUF file at"):
        llama_cpp.llama_bench(tmp_path / "nothing.gguf", binary=fake_bench(tmp_path, "true"))
