"""The course on a CUDA GPU, in one report: the decode benchmark, every notebook and solution, the unit tests.

    python scripts/check_gpu.py                       # make test-gpu: build/gpu/report.md and report.json
    python scripts/check_gpu.py --budget-s 480 --out build/gpu

A learner with a GPU must learn on the GPU, and nothing in CI has one: this is the check to run whenever a
CUDA machine is at hand. Without CUDA it says so and exits 2 (nothing here is measured on a CPU).

In order, within `--budget-s` seconds (what does not fit is reported as not run):
1. `benchmarks/decode.py --gpu`: Llama-3-8B shapes, eager `generate`, static cache + `torch.compile`,
   chatkit's recommended path, the compiled forward alone, and a profile of where a token's time goes;
2. every notebook and every solution, executed with CUDA visible; every error cell is listed (not only
   the first), and the executed copies are kept beside the report;
3. the unit tests and docstring examples (pytest), run beside the notebooks: they are CPU-bound.
Exits 1 if anything failed.
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import nbformat
from execute_notebooks import execute, offline_env

ROOT = Path(__file__).resolve().parent.parent


def machine_facts():
    import torch
    import transformers

    props = torch.cuda.get_device_properties(0)
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "gpu": props.name,
        "gpu_memory_gib": round(props.total_memory / 2**30, 1),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }


def error_cells(nb):
    """[(cell number, first source line, 'Name: message')] for every cell whose output is an error."""
    found = []
    for number, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                first = next(
                    (line for line in cell.source.splitlines() if line.strip() and not line.startswith("#")), ""
                )
                found.append((number, first[:100], f"{output['ename']}: {output['evalue'][:300]}"))
    return found


def run_notebooks(paths, out, deadline):
    rows = []
    for path in paths:
        name = path.name if path.parent.name == "notebooks" else f"{path.parent.name}/{path.name}"
        if time.monotonic() > deadline:
            rows.append({"notebook": name, "result": "not run: out of time"})
            continue
        start = time.perf_counter()
        nb, _ = execute(path, timeout=600, allow_errors=True)
        seconds = time.perf_counter() - start
        errors = error_cells(nb)
        target = out / "notebooks" / name.replace("/", "__")
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, target)
        rows.append(
            {
                "notebook": name,
                "seconds": round(seconds, 1),
                "errors": errors,
                "result": "ok" if not errors else f"{len(errors)} error cell(s)",
            }
        )
        print(f"{name}: {rows[-1]['result']} ({seconds:.0f} s)", flush=True)
    return rows


def start_unit_tests(out):
    """pytest in the background (CPU-bound, a few threads): unit tests and docstring examples."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TQDM_DISABLE="1", OMP_NUM_THREADS="2")
    log = open(out / "pytest.log", "w")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rfE",
            "-p",
            "no:cacheprovider",
            "--doctest-modules",
            "chatkit",
            "tests",
            f"--junitxml={out / 'pytest.xml'}",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    ), log


def unit_test_summary(out):
    path = out / "pytest.xml"
    if not path.is_file():
        return {"result": "no report: pytest did not finish"}
    suite = ET.parse(path).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    failed = [
        f"{case.get('classname')}.{case.get('name')}: "
        f"{(case.find('failure') if case.find('failure') is not None else case.find('error')).get('message', '')[:200]}"
        for case in suite.iter("testcase")
        if case.find("failure") is not None or case.find("error") is not None
    ]
    counts = {key: int(suite.get(key, 0)) for key in ("tests", "failures", "errors", "skipped")}
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    return {**counts, "failed": failed}


def write_report(out, report):
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    lines = [f"# chatkit on a GPU: {report['machine']['gpu']}, {report['machine']['date']}", "", "| | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in report["machine"].items()]
    bench = report.get("benchmark", {})
    lines += ["", "## benchmarks/decode.py --gpu", ""]
    if "methods" in bench:
        lines += [
            f"{bench['model_parameters'] / 1e9:.2f}B parameters, {bench['weight_bytes_per_token'] / 1e9:.2f} GB "
            f"per token, copy bandwidth {bench['bandwidth']['copy_gb_s']:.0f} GB/s",
            "",
            "| method | tok/s | ms per token | % of copy bandwidth |",
            "|---|---:|---:|---:|",
        ]
        lines += [
            f"| {name} | {m['decode_tokens_per_s']:.1f} | {1e3 / m['decode_tokens_per_s']:.2f} | "
            f"{100 * m['fraction_of_copy_bandwidth']:.0f}% |"
            for name, m in bench["methods"].items()
        ]
        for key in ("profile", "eager_before_compile", "notes"):
            if key in bench:
                lines += ["", f"{key}: `{json.dumps(bench[key])}`"]
    else:
        lines.append(f"not measured: {bench.get('result', 'no result')}")
    lines += ["", "## Notebooks and solutions", "", "| notebook | seconds | result |", "|---|---:|---|"]
    for row in report.get("notebooks", []):
        lines.append(f"| {row['notebook']} | {row.get('seconds', '')} | {row['result']} |")
        lines += [f"|  | cell {n} | `{src}` → {err} |" for n, src, err in row.get("errors", [])]
    tests = report.get("unit_tests", {})
    lines += ["", "## Unit tests", "", json.dumps({k: v for k, v in tests.items() if k != "failed"})]
    lines += [f"- {name}" for name in tests.get("failed", [])]
    (out / "report.md").write_text("\n".join(lines) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "gpu")
    parser.add_argument("--budget-s", type=float, default=1800, help="stop starting new work after this long")
    parser.add_argument("--skip-tests", action="store_true", help="leave out the unit tests")
    parser.add_argument("--skip-benchmark", action="store_true", help="leave out benchmarks/decode.py --gpu")
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook and solution")
    args = parser.parse_args(argv)

    import torch

    if not torch.cuda.is_available():
        print("make test-gpu needs a CUDA GPU that torch can see; nothing measured.", file=sys.stderr)
        return 2
    deadline = time.monotonic() + args.budget_s
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"machine": machine_facts()}
    write_report(args.out, report)
    if not args.skip_benchmark:
        bench_json = args.out / "decode_gpu.json"
        done = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / "decode.py"), "--gpu", "--json", str(bench_json)],
            cwd=ROOT,
            timeout=min(300, max(60, deadline - time.monotonic())),
        )
        report["benchmark"] = (
            json.loads(bench_json.read_text())
            if bench_json.is_file()
            else {"result": f"decode.py exited {done.returncode}"}
        )
        write_report(args.out, report)
    tests = None if args.skip_tests else start_unit_tests(args.out)
    offline_env()
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted(
        (ROOT / "solutions").glob("*.ipynb")
    )
    report["notebooks"] = run_notebooks(paths, args.out, deadline)
    write_report(args.out, report)
    if tests is not None:
        process, log = tests
        try:
            process.wait(timeout=max(10, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        report["unit_tests"] = unit_test_summary(args.out)
    write_report(args.out, report)
    print((args.out / "report.md").read_text())
    bad = (
        any(row["result"] != "ok" for row in report["notebooks"])
        or report.get("unit_tests", {}).get("failed")
        or "methods" not in report.get("benchmark", {"methods": 1})
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
