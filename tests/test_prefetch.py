"""chatkit.prefetch (`python -m chatkit prefetch`): sizes first, ask, download, then a real offline load.

The Hub is faked at huggingface_hub's boundary (its file list and snapshot_download); the download
writes the embedded model into a Hugging Face cache in a temporary folder, and the offline check then
loads it for real, in a fresh Python with HF_HUB_OFFLINE=1.
"""

import shutil
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import pytest

import chatkit
from chatkit import prefetch

NAME = "org/tiny"
SEEING = "org/tiny-vision"  # served from the embedded vision-language model's files
COMMIT = "1" * 40


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    sources = {NAME: chatkit.embedded_model_path(), SEEING: chatkit.embedded_vision_path()}
    served = {name: [p for p in Path(source).iterdir() if prefetch.wanted(p.name)] for name, source in sources.items()}
    files = served[NAME]
    downloads = []

    class FakeApi:
        def model_info(self, name, files_metadata=False):
            if name not in served and name not in prefetch.COURSE_MODELS:
                raise LookupError(f"404: {name} not found")  # what the Hub's client reports, in short
            siblings = [SimpleNamespace(rfilename=p.name, size=p.stat().st_size) for p in served.get(name, files)]
            siblings.append(SimpleNamespace(rfilename="onnx/model.onnx", size=10**9))  # not needed: not counted
            return SimpleNamespace(siblings=siblings)

    def fake_snapshot_download(name, allow_patterns=None):
        repo = tmp_path / f"models--{name.replace('/', '--')}"
        snapshot = repo / "snapshots" / COMMIT
        snapshot.mkdir(parents=True)
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text(COMMIT)
        for path in served[name]:
            shutil.copy(path, snapshot / path.name)
        downloads.append((name, allow_patterns))
        return str(snapshot)

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    return SimpleNamespace(files=files, downloads=downloads)


def test_dry_run_lists_sizes_and_downloads_nothing(fake_hub, capsys):
    assert prefetch.main([NAME, "--dry-run"]) == 0
    out = capsys.readouterr().out
    total = sum(p.stat().st_size for p in fake_hub.files)
    assert f"{NAME}: {len(fake_hub.files)} files, {chatkit.formatting.format_bytes(total)}" in out
    assert fake_hub.downloads == []


def test_asks_first_and_a_no_downloads_nothing(fake_hub, capsys):
    asked = []
    assert prefetch.main([NAME], ask=lambda q: asked.append(q) or "n") == 1
    assert asked and asked[0].startswith("Download ") and fake_hub.downloads == []
    assert "nothing downloaded" in capsys.readouterr().out


def test_downloads_then_loads_offline(fake_hub, capsys):
    assert prefetch.main([NAME], ask=lambda q: "y") == 0
    assert fake_hub.downloads == [(NAME, list(prefetch.PATTERNS))]
    assert f"{NAME}: downloaded to" in capsys.readouterr().out.replace("\n", " ")


def test_a_model_that_does_not_load_offline_fails(fake_hub, monkeypatch, capsys):
    monkeypatch.setattr(prefetch, "loads_offline", lambda name: (False, "OSError: no weights"))
    assert prefetch.main([NAME, "--yes"]) == 1
    assert "does NOT load offline: OSError: no weights" in capsys.readouterr().out


def test_an_unknown_model_and_offline_mode_are_explained(fake_hub, monkeypatch, capsys):
    assert prefetch.main(["org/nothing", "--yes"]) == 1
    assert "cannot list its files (LookupError: 404: org/nothing not found)" in capsys.readouterr().err
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert prefetch.main([NAME]) == 2
    assert "prefetch needs the Hub" in capsys.readouterr().err


def test_a_model_that_sees_is_checked_with_its_processor(fake_hub, capsys):
    assert prefetch.main([SEEING, "--yes"]) == 0
    out = capsys.readouterr().out.replace("\n", " ")
    assert f"{SEEING}: downloaded to" in out and "; loads offline" in out


def test_course_lists_every_model_the_notebooks_use_online(fake_hub, capsys):
    assert prefetch.main(["--course", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert [line.split(":")[0] for line in out.splitlines()[:-1]] == list(prefetch.COURSE_MODELS)
    assert prefetch.main([NAME, "--course", "--dry-run"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith(f"{NAME}:")
