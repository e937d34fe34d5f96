"""`make test-wheel`: the wheel is ready to publish: it carries the embedded model, and a notebook runs from it.

Builds the wheel (`python -m build`), checks it holds the embedded chat model, its draft, the vision model and the data
files the notebooks read, installs it into a fresh venv (with the course's pins), and executes notebook
01 there, offline, from a folder outside the repository, so only the installed chatkit can be imported.

    python scripts/check_wheel.py
"""

import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NEEDED = (
    "chatkit/embedded/chat/model.safetensors",
    "chatkit/embedded/chat/tokenizer.json",
    "chatkit/embedded/draft/model.safetensors",
    "chatkit/embedded/vision/model.safetensors",
    "chatkit/embedded/vision/processor_config.json",
    "chatkit/data/held_out.json",
    "chatkit/data/real_model_examples.json",
)


def run(*command, **kwargs):
    print("+", " ".join(str(c) for c in command), flush=True)
    return subprocess.run([str(c) for c in command], **{"check": True, **kwargs})


def main():
    dist = ROOT / "build" / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    run(sys.executable, "-m", "build", "--wheel", "--outdir", dist, ROOT)
    wheel = next(dist.glob("chatkit-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [name for name in NEEDED if name not in names]
    if missing:
        print("FAIL: the wheel lacks", ", ".join(missing))
        return 1
    print(f"ok: {wheel.name}, {wheel.stat().st_size / 1e6:.1f} MB, carries the embedded model and the data files")
    with tempfile.TemporaryDirectory() as work:
        venv = Path(work) / "venv"
        run(sys.executable, "-m", "venv", venv)
        python = venv / "bin" / "python"
        run(python, "-m", "pip", "install", "-q", "-c", ROOT / "constraints.txt", wheel, "nbclient", "ipykernel")
        notebook = Path(work) / "01_quickstart.ipynb"
        shutil.copy(ROOT / "notebooks" / "01_quickstart.ipynb", notebook)
        code = (
            "import os, sys, nbformat\n"
            "from nbclient import NotebookClient\n"
            "os.environ.update(HF_HUB_OFFLINE='1', TQDM_DISABLE='1')\n"
            "nb = nbformat.read(sys.argv[1], as_version=4)\n"
            "NotebookClient(nb, timeout=600, kernel_name='python3', resources={'metadata': {'path': sys.argv[2]}}).execute()\n"
            "import chatkit; print('ran notebook 01 on the chatkit installed at', os.path.dirname(chatkit.__file__))\n"
        )
        result = run(python, "-c", code, notebook, work, cwd=work, capture_output=True, text=True, check=False)
        print(result.stdout.strip().replace(work, "<venv folder>"))
        if result.returncode:
            print(
                "FAIL: notebook 01 failed from the installed wheel:\n" + result.stderr[-3000:].replace(work, "<venv>")
            )
            return 1
        if str(ROOT) in result.stdout:
            print("FAIL: the notebook imported chatkit from the repository, not from the wheel")
            return 1
    print("ok: notebook 01 ran offline from the installed wheel")
    return 0


if __name__ == "__main__":
    sys.exit(main())
