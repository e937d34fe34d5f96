"""Execute notebooks headless and offline on the embedded model.

Two uses:
    python scripts/execute_notebooks.py notebooks/01_quickstart.ipynb ...   # re-execute in place (authors)
    python scripts/execute_notebooks.py --out build notebooks/*.ipynb       # `make run`: copies + HTML
    python scripts/execute_notebooks.py --model FOLDER --max-seconds 300 --out build/real notebooks/*.ipynb
                                                                            # `make test-real`: another model

In place, the stored outputs are what nbval later compares, so execution is made clean: no timing
metadata, no widget state. Prints a table: notebook, seconds, ok / failed; exits non-zero on a failure.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from chatkit.quiz import WIDGET_VIEW


def offline_env(model=None):
    """The environment every run uses: the Hub off, and the embedded model unless `model` is given."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    os.environ.pop("CHATKIT_MODEL", None)
    if model is not None:
        os.environ["CHATKIT_MODEL"] = str(model)
    else:  # stored outputs (and nbval's runs, see the Makefile) keep no progress bar
        os.environ["TQDM_DISABLE"] = "1"


def execute(path, timeout=600, allow_errors=False):
    """Execute one notebook in its own folder; return (notebook, error message or None).

    `allow_errors=True` runs every cell even after an error (the error outputs stay in the notebook).
    """
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(Path(path).parent)}},
        record_timing=False,
        store_widget_state=False,
        allow_errors=allow_errors,
    )
    try:
        # The kernel process's own stderr holds only start-up chatter; cell output arrives via messages.
        client.execute(stderr=subprocess.DEVNULL)
    except CellExecutionError as error:
        return nb, failure_summary(str(error))
    drop_widget_views(nb)
    merge_streams(nb)
    return nb, None


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def failure_summary(message):
    """The error's last line and the source line it came from (IPython marks it with an arrow)."""
    lines = [line.rstrip() for line in ANSI.sub("", message).strip().splitlines()]
    arrows = [line.split("---->", 1)[1].strip().split(" ", 1) for line in lines if "---->" in line]
    return lines[-1] + (f" (cell line {arrows[-1][0]}: {arrows[-1][-1]})" if arrows else "")


def drop_widget_views(nb):
    """Remove widget views from outputs: they only point at widget state (not saved) by a random id.

    What stays is each output's text form, which nbval compares; a reader re-runs the cell to get
    the live widget.
    """
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            output.get("data", {}).pop(WIDGET_VIEW, None)


def merge_streams(nb):
    """Join a cell's consecutive stdout (or stderr) outputs into one, as Jupyter shows them.

    The kernel sends printed text in pieces as its buffer flushes; where one piece ends depends on
    timing, so unmerged pieces would change the stored notebook from run to run.
    """
    for cell in nb.cells:
        merged = []
        for output in cell.get("outputs", []):
            if (
                merged
                and output.get("output_type") == "stream" == merged[-1].get("output_type")
                and output["name"] == merged[-1]["name"]
            ):
                merged[-1]["text"] += output["text"]
            else:
                merged.append(output)
        if "outputs" in cell:
            cell["outputs"] = merged


def write_html(nb, target):
    try:
        from nbconvert import HTMLExporter
    except ImportError:  # an environment without nbconvert (make test-colab): the .ipynb copy is enough
        return

    body, _ = HTMLExporter().from_notebook_node(nb)
    target.write_text(body, encoding="utf-8")


def record_times(key, measured, path=Path(__file__).resolve().parent.parent / "notebooks" / "run_times.json"):
    """Merge {notebook: {key: seconds}} into the times file the notebooks' time lines come from."""
    times = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    for name, seconds in measured:
        times.setdefault(name, {})[key] = round(seconds, 1)
    path.write_text(json.dumps(times, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def main(argv=None):
    parser = argparse.ArgumentParser(description="Execute notebooks headless and offline.")
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, help="write executed copies and HTML here instead of in place")
    parser.add_argument("--model", help="run on this model (CHATKIT_MODEL) instead of the embedded one")
    parser.add_argument("--max-seconds", type=float, help="fail a notebook that takes longer than this")
    parser.add_argument(
        "--record-times",
        metavar="KEY",
        help="store each notebook's seconds under KEY in notebooks/run_times.json "
        "(embedded or real; scripts/sync_notebooks.py writes them into the notebooks)",
    )
    args = parser.parse_args(argv)
    if args.model is not None and args.out is None:
        parser.error("--model needs --out: stored outputs are the embedded model's")
    offline_env(args.model)
    rows = []
    for path in args.notebooks:
        start = time.perf_counter()
        nb, error = execute(path)
        seconds = time.perf_counter() - start
        if error is None and args.max_seconds is not None and seconds > args.max_seconds:
            error = f"took {seconds:.0f} s, over the budget of {args.max_seconds:.0f} s"
        # a solution is named with its folder: solutions/01_quickstart.ipynb is not notebook 01 (its
        # copy, its time)
        name = path.name if path.resolve().parent.name == "notebooks" else f"{path.resolve().parent.name}/{path.name}"
        if args.out is not None:
            target = args.out / name
            target.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, target)
            write_html(nb, target.with_suffix(".html"))
        elif error is None:
            nbformat.write(nb, path)
        rows.append((name, seconds, "ok" if error is None else f"failed: {error}"))
    if args.record_times:
        record_times(args.record_times, [(name, seconds) for name, seconds, result in rows if result == "ok"])
    width = max(len(name) for name, _, _ in rows)
    print(f"{'notebook':<{width}}  {'seconds':>7}  result")
    for name, seconds, result in rows:
        print(f"{name:<{width}}  {seconds:7.1f}  {result}")
    return 0 if all(result == "ok" for _, _, result in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
