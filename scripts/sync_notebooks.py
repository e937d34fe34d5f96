"""Write what every notebook shares from one place: its Colab badge, its install cell, its time line.

Each solution in solutions/ gets its notebook's install cell; docs/workshop.md gets the table of times.

- The repository's address comes from pyproject.toml (`[project.urls] Repository`): point it at a
  fork and run this script, and every badge and install cell follows.
- The times come from notebooks/run_times.json, measured by `make run` (the embedded model) and
  `make test-real` (a real 135M-parameter model), both on the machine that ran them. The same times
  also fill the table of docs/workshop.md, between its two marker comments (TABLE_START, TABLE_END).

    python scripts/sync_notebooks.py           # rewrite the notebooks' shared cells and the guide's table
    python scripts/sync_notebooks.py --check   # exit 1 when a notebook or the guide differs (tests/)
"""

import argparse
import json
import re
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
TIMES = NOTEBOOKS / "run_times.json"
BADGE = "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
TIME_PREFIX = "**Time:**"
GUIDE = ROOT / "docs" / "workshop.md"
TABLE_START = "<!-- notebook times: written by scripts/sync_notebooks.py from notebooks/run_times.json -->"
TABLE_END = "<!-- end of notebook times -->"
# What a notebook needs beyond chatkit's own requirements, on Colab (which has no bitsandbytes).
EXTRA_PACKAGES = {
    "04_memory": ["bitsandbytes"],
    "05_performance": ["bitsandbytes"],
    "08_serving": ["transformers[serving]"],
    "09_thinking": ["transformers[serving]"],
}


def repository_url():
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["urls"]["Repository"].rstrip("/")


def colab_badge(name, url=None):
    path = (url or repository_url()).removeprefix("https://github.com/")
    return f"{BADGE}(https://colab.research.google.com/github/{path}/blob/main/notebooks/{name}.ipynb)"


def install_cell(name, url=None):
    packages = [f'"chatkit @ git+{url or repository_url()}"'] + [f'"{p}"' for p in EXTRA_PACKAGES.get(name, [])]
    return (
        "# On Colab, install chatkit (this course's helpers) and only what is missing: pip keeps what Colab\n"
        "# already has. Elsewhere `make run` / `make lab` set everything up.\n"
        "import sys\n"
        "\n"
        'if "google.colab" in sys.modules:\n'
        "    import subprocess\n"
        "\n"
        f"    packages = [{', '.join(packages)}]\n"
        '    if subprocess.run([sys.executable, "-m", "pip", "install", "-q", *packages]).returncode != 0:\n'
        '        raise RuntimeError("Installing chatkit failed: check that this runtime is online, "\n'
        '                           "then run this cell again.")'
    )


def _minutes(seconds):
    minutes = round(seconds / 60)
    return "under a minute" if seconds < 60 else f"about {minutes} minute{'' if minutes == 1 else 's'}"


def load_times():
    """{notebook file name: {"embedded": seconds, "real": seconds}} from notebooks/run_times.json."""
    return json.loads(TIMES.read_text(encoding="utf-8")) if TIMES.is_file() else {}


def notebook_names():
    """The course's notebooks, in order, without their suffix: 01_quickstart, ..."""
    return [path.stem for path in sorted(NOTEBOOKS.glob("*.ipynb"))]


def time_line(name, times=None):
    """The notebook's time line from the measured run times, or None when none were measured."""
    if times is None:
        times = load_times()
    measured = times.get(f"{name}.ipynb", {})
    parts = []
    if "embedded" in measured:
        parts.append(f"{_minutes(measured['embedded'])} with the embedded model")
    if "real" in measured:
        parts.append(f"{_minutes(measured['real'])} with a real 135M-parameter chat model")
    if not parts:
        return None
    return f"{TIME_PREFIX} {' and '.join(parts)}, run on a 2-core CPU (`make run`, `make test-real`)."


def synced(notebook, name, url=None, times=None):
    """The notebook (a dict) with its badge, time line and install cell as this script writes them."""
    header, install = notebook["cells"][0], notebook["cells"][1]
    lines = "".join(header["source"]).split("\n")
    lines = [line for line in lines if not line.startswith((BADGE, TIME_PREFIX))]
    timing = time_line(name, times)
    shared = ["", colab_badge(name, url)] + (["", timing] if timing else []) + [""]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines[:1] + shared + lines[1:]))
    header["source"] = text.splitlines(keepends=True)
    install["source"] = install_cell(name, url).splitlines(keepends=True)
    return notebook


def times_table(names, times):
    """The guide's Markdown table: each notebook's measured seconds per model, and their total.

    A time not measured reads "not measured"; a total over a column with a gap reads "-".
    """
    columns = (("embedded", "embedded model (s)"), ("real", "real model: SmolLM2-135M-Instruct (s)"))
    lines = ["| notebook | " + " | ".join(title for _, title in columns) + " |", "| --- |" + " ---: |" * len(columns)]
    for name in names:
        measured = times.get(f"{name}.ipynb", {})
        cells = [f"{measured[key]:.1f}" if key in measured else "not measured" for key, _ in columns]
        lines.append(f"| [{name}](../notebooks/{name}.ipynb) | " + " | ".join(cells) + " |")
    totals = []
    for key, _ in columns:
        seconds = [times.get(f"{name}.ipynb", {}).get(key) for name in names]
        totals.append("-" if None in seconds else f"{sum(seconds):.1f}")
    lines.append(f"| all {len(names)} notebooks | " + " | ".join(totals) + " |")
    return "\n".join(lines)


def synced_guide(text, names=None, times=None):
    """The guide's text with the table between its markers as this script writes it; the rest unchanged."""
    if text.count(TABLE_START) != 1 or text.count(TABLE_END) != 1 or text.index(TABLE_START) > text.index(TABLE_END):
        raise ValueError(
            f"the guide needs the marker {TABLE_START!r} once, then {TABLE_END!r} once, with the table between them"
        )
    before, rest = text.split(TABLE_START)
    _, after = rest.split(TABLE_END)
    table = times_table(notebook_names() if names is None else names, load_times() if times is None else times)
    return f"{before}{TABLE_START}\n{table}\n{TABLE_END}{after}"


def _with_install_cell(notebook, name):
    notebook["cells"][1]["source"] = install_cell(name).splitlines(keepends=True)
    return notebook


def _rewrite(path, change, check):
    """True when `change(notebook)` differs from the file; then it is written, unless `check`."""
    text = path.read_text(encoding="utf-8")
    new = json.dumps(change(json.loads(text)), indent=1, ensure_ascii=False) + "\n"
    if new != text and not check:
        path.write_text(new, encoding="utf-8")
    return new != text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 when a notebook or docs/workshop.md differs"
    )
    args = parser.parse_args(argv)
    stale = []
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        if _rewrite(path, lambda notebook: synced(notebook, path.stem), args.check):
            stale.append(path.name)
    for path in sorted((ROOT / "solutions").glob("*.ipynb")):  # a solution has its notebook's install cell
        if _rewrite(path, lambda notebook: _with_install_cell(notebook, path.stem), args.check):
            stale.append(f"solutions/{path.name}")
    guide = GUIDE.relative_to(ROOT) if GUIDE.is_relative_to(ROOT) else GUIDE
    try:
        text = GUIDE.read_text(encoding="utf-8")
        new = synced_guide(text)
    except (OSError, ValueError) as error:
        print(f"{guide}: cannot write its table of times: {error}")
        return 1
    if new != text:
        stale.append(str(guide))
        if not args.check:
            GUIDE.write_text(new, encoding="utf-8")
    if args.check and stale:
        print("not in sync with pyproject.toml / run_times.json:", ", ".join(stale), "(run scripts/sync_notebooks.py)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
