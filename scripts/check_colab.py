"""`make test-colab`: the course on Google Colab's own package versions, as far as a CPU machine allows.

1. A fresh virtual environment with exactly the versions of tests/colab/packages.txt (Colab's);
2. chatkit installed the way every notebook's first cell installs it on Colab (the same pip command,
   from this repository's committed HEAD instead of GitHub, plus bitsandbytes, which Colab lacks);
   fails if that changes the version of any package that was already there;
3. every notebook executed there (offline, embedded model): fails on an error cell;
4. the chat widget's unit tests on Colab's ipywidgets 7.

Colab's front end itself (how it renders widgets) cannot run here: see the README's Colab section.

    python scripts/check_colab.py [--venv build/colab-venv]
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ROOT / "tests" / "colab" / "packages.txt"
TOOLS = ["pytest==9.2.0"]  # test runner only: checked like the rest not to move a Colab package


def run(*command, **kwargs):
    print("+", " ".join(str(c) for c in command), flush=True)
    return subprocess.run([str(c) for c in command], check=True, **kwargs)


def installed(python):
    out = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=json"], check=True, capture_output=True, text=True
    ).stdout
    return {p["name"].lower().replace("_", "-"): p["version"] for p in json.loads(out)}


def changed(before, after):
    return [
        f"{name} {version} -> {after.get(name, 'removed')}"
        for name, version in sorted(before.items())
        if after.get(name) != version
    ]


def colab_install_command():
    """The pip arguments of the notebooks' install cell (scripts/sync_notebooks.py), from this repository."""
    spec = importlib.util.spec_from_file_location("sync_notebooks", ROOT / "scripts" / "sync_notebooks.py")
    sync = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sync)
    url = f"file://{ROOT}"
    packages = [f"chatkit @ git+{url}"] + sorted({p for ps in sync.EXTRA_PACKAGES.values() for p in ps})
    assert f"git+{sync.repository_url()}" in sync.install_cell("01_quickstart")  # the cell installs the same way
    return ["install", "-q", *packages]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=ROOT / "build" / "colab-venv")
    args = parser.parse_args(argv)
    python = args.venv / "bin" / "python"
    if args.venv.exists():
        run("rm", "-rf", args.venv)
    run(sys.executable, "-m", "venv", args.venv)
    run(python, "-m", "pip", "install", "-q", "-U", "pip")  # an old pip rejects "name @ git+file://"
    run(python, "-m", "pip", "install", "-q", "-r", PACKAGES)
    before = installed(python)
    run(python, "-m", "pip", *colab_install_command())
    run(python, "-m", "pip", "install", "-q", *TOOLS)
    after = installed(python)
    moved = changed(before, after)
    if moved:
        print("FAIL: installing chatkit as the Colab cell does changed Colab's packages:", *moved, sep="\n  ")
        return 1
    print(
        f"ok: chatkit installed, none of the {len(before)} packages already there changed "
        f"(ipywidgets {after['ipywidgets']}, transformers {after['transformers']})"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", TQDM_DISABLE="1")
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "solutions").glob("*.ipynb"))
    failed = subprocess.run(
        [str(python), ROOT / "scripts" / "execute_notebooks.py", "--out", ROOT / "build" / "colab", *notebooks], env=env
    ).returncode
    tests = subprocess.run(
        [
            str(python),
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            ROOT / "tests" / "test_widgets.py",
            ROOT / "tests" / "test_quiz.py",
        ],
        env=env,
        cwd=ROOT / "build",
    ).returncode
    # The widget typed into in a real browser, in the classic Notebook 6.5 with ipywidgets 7. The browser
    # driver (playwright) lives in the course's own venv, which `make test` creates.
    course_python = ROOT / ".venv" / "bin" / "python"
    browser = 0
    if course_python.exists():
        browser = subprocess.run(
            [
                str(course_python),
                "-m",
                "pytest",
                "-q",
                "-rs",
                "-p",
                "no:cacheprovider",
                ROOT / "tests" / "test_browser_classic.py",
            ],
            env=dict(env, CHATKIT_CLASSIC_PYTHON=str(python)),
            cwd=ROOT,
        ).returncode
    else:
        print("note: no .venv (run `make test` first): the classic-Notebook browser test was not run")
    return 1 if failed or tests or browser else 0


if __name__ == "__main__":
    sys.exit(main())
