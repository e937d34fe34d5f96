"""Is this machine ready for the course? `python -m chatkit doctor` checks, and says how to fix what is not.

One row per check: Python and the packages chatkit needs (with the versions it accepts), memory, 16-bit
maths, whether the Hub answers, which models load offline, and, on Colab, what the notebooks' install
cell would change. `run_checks()` returns the rows; `main()` prints them as a table and exits 1 when a
row failed (a warning does not fail).

Example:
    >>> row = Row("Python", "ok", "3.11.7", "")
    >>> row.failed, row.status
    (False, 'ok')
"""

import argparse
import platform
import sys
from dataclasses import dataclass
from importlib import metadata

from .environment import quiet
from .fast_decoding import decoding_dtype
from .formatting import GiB, format_bytes
from .hub import (
    DEFAULT_HUB_MODEL,
    DEFAULT_TOOLS_MODEL,
    describe_model,
    embedded_model_path,
    embedded_vision_path,
    hub_offline_requested,
    hub_reachable,
)
from .loading import load_model
from .machine import MachineMemory, cpu_features, machine_memory, on_colab, system_ram

MIN_PYTHON = (3, 10)
LOW_MEMORY = 2 * GiB  # below this much available, even a 135M model in fp32 plus a notebook gets tight


@dataclass
class Row:
    """One check: its name, "ok" / "warn" / "fail", what was found, and how to fix it."""

    check: str
    status: str
    found: str
    fix: str

    @property
    def failed(self):
        return self.status == "fail"


def requirements():
    """chatkit's own dependencies, as `packaging` Requirements (from the installed package's metadata)."""
    from packaging.requirements import Requirement

    return [Requirement(text) for text in metadata.requires("chatkit") or [] if "extra ==" not in text]


def package_rows(wanted=None):
    """A row per required package: installed, and at a version chatkit accepts.

    Without chatkit's own metadata (a clone on PYTHONPATH, never pip-installed) its requirements are
    unknown: one failing row says how to install it.
    """
    if wanted is None:
        try:
            wanted = requirements()
        except metadata.PackageNotFoundError:
            return [
                Row(
                    "chatkit",
                    "fail",
                    "imported from its folder, but not installed as a package, so its requirements are unknown",
                    "run `pip install -e .` in the clone (or `make setup`)",
                )
            ]
    rows = []
    for requirement in wanted:
        spec = str(requirement.specifier) or "any version"
        try:
            version = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            rows.append(Row(requirement.name, "fail", f"not installed (needs {spec})", f"pip install '{requirement}'"))
            continue
        if requirement.specifier.contains(version, prereleases=True):
            rows.append(Row(requirement.name, "ok", version, ""))
        else:
            change = (
                " (the notebooks' Colab install cell would upgrade it, then ask for a runtime restart)"
                if on_colab()
                else ""
            )
            rows.append(
                Row(requirement.name, "fail", f"{version}, needs {spec}{change}", f"pip install '{requirement}'")
            )
    return rows


def python_row():
    found = platform.python_version()
    if sys.version_info[:2] >= MIN_PYTHON:
        return Row("Python", "ok", found, "")
    need = ".".join(map(str, MIN_PYTHON))
    return Row("Python", "fail", f"{found}, needs {need} or newer", f"install Python {need}+ and make the venv again")


def _torch():
    """torch, or None when it is not installed (the rows then say so, and go on)."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def memory_rows():
    """System RAM, and the GPU's memory when there is one (torch tells; without torch, RAM only)."""
    torch = _torch()
    memories = [MachineMemory("cpu", *system_ram())]
    if torch is not None and torch.cuda.is_available():
        memories.append(machine_memory("cuda"))
    rows = []
    for memory in memories:
        low = memory.device == "cpu" and memory.available_bytes < LOW_MEMORY
        rows.append(
            Row(
                "GPU memory" if memory.device == "cuda" else "RAM",
                "warn" if low else "ok",
                f"{format_bytes(memory.available_bytes)} available of {format_bytes(memory.total_bytes)}",
                "close other programs (browser tabs, other notebooks' kernels)" if low else "",
            )
        )
    return rows


def maths_row():
    """Which 16-bit maths this machine does fast, and the dtype the course's fast path picks here."""
    torch = _torch()
    if torch is None:
        return Row("16-bit maths", "fail", "not checked: torch is missing", "pip install torch")
    dtype, _ = decoding_dtype("cuda" if torch.cuda.is_available() else "cpu")
    features = cpu_features()
    cpu = (
        ", ".join(features)
        if features
        else ("no fast 16-bit CPU flags" if features is not None else "CPU flags unreadable")
    )
    if torch.cuda.is_available():
        cpu += f"; GPU bf16: {torch.cuda.is_bf16_supported()}"
    return Row("16-bit maths", "ok", f"{cpu}; the fast path decodes in {str(dtype).replace('torch.', '')} here", "")


def hub_row(reachable=None):
    if hub_offline_requested():
        return Row("Hugging Face Hub", "ok", "offline on purpose (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE set)", "")
    reachable = hub_reachable() if reachable is None else reachable
    if reachable:
        return Row("Hugging Face Hub", "ok", "reachable", "")
    return Row(
        "Hugging Face Hub",
        "warn",
        "not reachable: the notebooks use the embedded model",
        "fine offline; for Hub models connect, or copy a prepared Hugging Face cache (HF_HOME) here",
    )


def model_rows(hub_models=(DEFAULT_HUB_MODEL, DEFAULT_TOOLS_MODEL)):
    """The embedded models (chat, and the one that sees) must load; the Hub defaults load offline only when they
    are in the local cache."""
    from huggingface_hub import try_to_load_from_cache

    rows = []
    for check, path in (("embedded model", embedded_model_path()), ("embedded vision model", embedded_vision_path())):
        try:
            load_model(path, device_map=None)
            rows.append(Row(check, "ok", f"{describe_model(path)} loads", ""))
        except Exception as error:  # noqa: BLE001 - any failure here is the row's finding
            missing = isinstance(error, ImportError) and error.name
            rows.append(
                Row(
                    check,
                    "fail",
                    f"does not load: {type(error).__name__}: {error}",
                    f"pip install {error.name.split('.')[0]}"
                    if missing
                    else "reinstall chatkit: `make setup` in the repository, or the notebooks' install cell",
                )
            )
    for name in hub_models:
        cached = isinstance(try_to_load_from_cache(name, "config.json"), str)
        rows.append(
            Row(
                name,
                "ok" if cached else "warn",
                "in the local Hugging Face cache: loads offline" if cached else "not in the local cache",
                "" if cached else f"download it while online: hf download {name}",
            )
        )
    return rows


def run_checks(load_models=True):
    """Every check's Row, in the order printed."""
    rows = [python_row(), *package_rows(), *memory_rows(), maths_row(), hub_row()]
    if load_models:
        rows += model_rows()
    return rows


def report(rows):
    """One line per row (status, check, what was found), its fix under it, then the verdict."""
    width = max(len(r.check) for r in rows)
    lines = []
    for r in rows:
        lines.append(f"{r.status:<4}  {r.check:<{width}}  {r.found}")
        if r.fix:
            lines.append(f"{'':<4}  {'':<{width}}  fix: {r.fix}")
    failed = [r.check for r in rows if r.failed]
    lines.append(f"{len(failed)} check(s) failed: {', '.join(failed)}" if failed else "ready: no check failed")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m chatkit doctor", description=__doc__.splitlines()[0])
    parser.add_argument("--no-models", action="store_true", help="skip loading the models (faster)")
    args = parser.parse_args(argv)
    try:
        quiet()  # no progress bars or library logs between the rows
    except ImportError:
        pass  # transformers is missing: its row says so
    rows = run_checks(load_models=not args.no_models)
    print(report(rows))
    return 1 if any(r.failed for r in rows) else 0
