"""What a learner sees on GitHub: the committed notebooks' outputs are clean, and every figure is an image."""

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))


def _outputs(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    for index, cell in enumerate(notebook["cells"]):
        for output in cell.get("outputs", []):
            yield index, output


@pytest.mark.parametrize("path", NOTEBOOKS + SOLUTIONS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_figure_is_stored_as_an_image(path):
    bare = [
        index
        for index, output in _outputs(path)
        if "".join(output.get("data", {}).get("text/plain", "")).startswith("<Figure size")
        and "image/png" not in output.get("data", {})
    ]
    assert bare == [], f"cells {bare} store a figure as text only: return a chatkit.plotting figure or show it"


@pytest.mark.parametrize("path", NOTEBOOKS + SOLUTIONS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_committed_outputs_are_clean(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    assert "widgets" not in notebook["metadata"], "widget state saved: execute with store_widget_state=False"
    assert notebook["metadata"].get("kernelspec"), "no kernelspec: JupyterLab would ask for a kernel"
    for index, cell in enumerate(notebook["cells"]):
        assert "execution" not in cell.get("metadata", {}), "timing metadata saved"
        streams = [
            output.get("name") if output["output_type"] == "stream" else None for output in cell.get("outputs", [])
        ]
        assert not any(a is not None and a == b for a, b in zip(streams, streams[1:])), (
            f"cell {index}: its printed text is split in pieces: execute with scripts/execute_notebooks.py"
        )
    problems = []
    for index, output in _outputs(path):
        text = "".join(output.get("text", "")) + "".join(output.get("data", {}).get("text/plain", ""))
        if output.get("name") == "stderr":
            problems.append(f"cell {index}: stderr {text[:80]!r}")
        if output.get("output_type") == "error":
            problems.append(f"cell {index}: error {output.get('ename')}")
        if "/work/" in text or "/home/" in text or "/root/" in text or "/tmp/" in text:
            problems.append(f"cell {index}: an absolute path {text[:80]!r}")
    assert problems == []


def test_badges_install_cells_and_times_come_from_one_place():
    """Every notebook's Colab badge, install cell and time line, and docs/workshop.md's table of times, are
    what scripts/sync_notebooks.py writes."""
    import importlib.util

    path = Path(__file__).parent.parent / "scripts" / "sync_notebooks.py"
    spec = importlib.util.spec_from_file_location("sync_notebooks", path)
    sync = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sync)
    assert sync.main(["--check"]) == 0
    url = sync.repository_url()
    for notebook in NOTEBOOKS:
        text = notebook.read_text(encoding="utf-8")
        assert (
            f"git+{url}" in text
            and f"colab.research.google.com/github/{url.removeprefix('https://github.com/')}" in text
        )


@pytest.mark.parametrize("path", NOTEBOOKS + SOLUTIONS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_printed_tables_fit_100_columns(path):
    """A table (an output with a row of dashes) must read on GitHub and a laptop screen without scrolling."""
    wide = []
    for index, output in _outputs(path):
        text = "".join(output.get("text", "")) or "".join(output.get("data", {}).get("text/plain", ""))
        lines = text.split("\n")
        if any(line.strip() and set(line) <= {"-", " "} and "--" in line for line in lines):
            width = max(len(line) for line in lines)
            if width > 100:
                wide.append(f"cell {index}: {width} columns")
    assert wide == []


@pytest.mark.parametrize("path", NOTEBOOKS + SOLUTIONS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_notebooks_are_valid_nbformat(path):
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)  # raises on a malformed notebook (a cell without an id, for one)
    assert all("id" in cell for cell in notebook.cells)


def _exercise_cells(path):
    """(check name, output text) for each code cell that calls a check of chatkit.exercises."""
    import re

    notebook = json.loads(path.read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        source = "".join(cell["source"])
        called = re.findall(r"^exercises\.(\w+)\(", source, re.MULTILINE)
        if cell["cell_type"] == "code" and called:
            text = "".join(
                "".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                for o in cell.get("outputs", [])
            )
            yield called[-1], text


def test_every_notebook_has_exercises_left_open_and_a_quiz_and_every_solution_passes_its_check():
    from chatkit import exercises, quiz

    assert [p.name for p in SOLUTIONS] == [p.name for p in NOTEBOOKS]
    used = []
    for notebook, solution in zip(NOTEBOOKS, SOLUTIONS):
        number = int(notebook.name[:2])
        asked = list(_exercise_cells(notebook))
        assert 3 <= len(asked) <= 5, notebook.name
        assert all(text.splitlines()[-1].startswith(("Not answered yet: ", "Not yet: ")) for _, text in asked), asked
        solved = list(_exercise_cells(solution))
        assert [name for name, _ in solved] == [name for name, _ in asked], solution.name
        assert all(text.splitlines()[-1].startswith("Right: ") for _, text in solved), solved
        assert f"quiz.show({number})" in notebook.read_text(encoding="utf-8") and number in quiz.QUIZZES
        used += [name for name, _ in asked]
    checks = [
        name
        for name, value in vars(exercises).items()
        if callable(value) and getattr(value, "__wrapped__", None) and not name.startswith("_")
    ]
    assert sorted(used) == sorted(checks)  # each check belongs to exactly one exercise
