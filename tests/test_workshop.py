"""docs/workshop.md, the instructor's guide: its table of measured times is what scripts/sync_notebooks.py writes."""

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def sync():
    spec = importlib.util.spec_from_file_location("sync_notebooks", ROOT / "scripts" / "sync_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_guide_table_is_what_the_script_writes(sync):
    text = sync.GUIDE.read_text(encoding="utf-8")
    assert text.count(sync.TABLE_START) == 1 and text.count(sync.TABLE_END) == 1
    assert sync.synced_guide(text) == text, "docs/workshop.md's table is out of date: run scripts/sync_notebooks.py"
    table = text.split(sync.TABLE_START)[1].split(sync.TABLE_END)[0]
    times = sync.load_times()
    for name in sync.notebook_names():  # every notebook has its row, with both of its measured times
        row = next(line for line in table.splitlines() if line.startswith(f"| [{name}]("))
        assert row.endswith(f"| {times[name + '.ipynb']['embedded']:.1f} | {times[name + '.ipynb']['real']:.1f} |")


def test_times_table_from_a_small_fake_times_dict(sync):
    times = {
        "01_hello.ipynb": {"embedded": 4.5, "real": 7.04},
        "02_more.ipynb": {"embedded": 12.0},
        "09_not_in_the_course.ipynb": {"embedded": 1.0, "real": 1.0},
    }
    assert sync.times_table(["01_hello", "02_more"], times).splitlines() == [
        "| notebook | embedded model (s) | real model: SmolLM2-135M-Instruct (s) |",
        "| --- | ---: | ---: |",
        "| [01_hello](../notebooks/01_hello.ipynb) | 4.5 | 7.0 |",
        "| [02_more](../notebooks/02_more.ipynb) | 12.0 | not measured |",
        "| all 2 notebooks | 16.5 | - |",
    ]


def test_a_stale_table_is_replaced_and_the_rest_of_the_guide_kept(sync):
    times = {"01_hello.ipynb": {"embedded": 4.5, "real": 7.0}}
    text = f"# Guide\n\nBefore.\n\n{sync.TABLE_START}\n| an old table |\n{sync.TABLE_END}\n\nAfter.\n"
    new = sync.synced_guide(text, ["01_hello"], times)
    assert new == (
        f"# Guide\n\nBefore.\n\n{sync.TABLE_START}\n{sync.times_table(['01_hello'], times)}\n"
        f"{sync.TABLE_END}\n\nAfter.\n"
    )
    assert sync.synced_guide(new, ["01_hello"], times) == new  # writing it again changes nothing


@pytest.mark.parametrize(
    "text",
    [
        "no markers",
        "<!-- end of notebook times -->\nthen the start\n{start}",
        "{start}\n{start}\n<!-- end of notebook times -->",
    ],
)
def test_a_guide_without_its_markers_is_refused(sync, text):
    with pytest.raises(ValueError, match="marker"):
        sync.synced_guide(text.format(start=sync.TABLE_START), ["01_hello"], {})


def test_check_fails_on_a_stale_guide_and_a_run_fixes_it(sync, tmp_path, monkeypatch, capsys):
    """The whole script on a copy: one notebook, its own times file and guide (the repository is not touched)."""
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    shutil.copy(ROOT / "notebooks" / "01_quickstart.ipynb", notebooks)
    (notebooks / "run_times.json").write_text(json.dumps({"01_quickstart.ipynb": {"embedded": 4.5, "real": 7.0}}))
    guide = tmp_path / "workshop.md"
    guide.write_text(f"# Guide\n{sync.TABLE_START}\n| an old table |\n{sync.TABLE_END}\n", encoding="utf-8")
    monkeypatch.setattr(sync, "NOTEBOOKS", notebooks)
    monkeypatch.setattr(sync, "TIMES", notebooks / "run_times.json")
    monkeypatch.setattr(sync, "GUIDE", guide)

    assert sync.main(["--check"]) == 1
    assert "workshop.md" in capsys.readouterr().out
    assert "| an old table |" in guide.read_text(encoding="utf-8")  # --check changes nothing
    assert sync.main([]) == 0
    assert "| [01_quickstart](../notebooks/01_quickstart.ipynb) | 4.5 | 7.0 |" in guide.read_text(encoding="utf-8")
    assert sync.main(["--check"]) == 0

    guide.write_text("# Guide without markers\n", encoding="utf-8")
    assert sync.main(["--check"]) == 1
    assert "marker" in capsys.readouterr().out
