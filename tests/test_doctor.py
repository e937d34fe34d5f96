"""chatkit.doctor (`python -m chatkit doctor`): every check on this machine, offline and with a fake Hub."""

import sys
from importlib.metadata import PackageNotFoundError, version

import pytest
from packaging.requirements import Requirement

from chatkit import doctor


def _installed():
    try:
        return bool(version("chatkit"))
    except PackageNotFoundError:
        return False


# `make setup` installs chatkit; run from a source tree on PYTHONPATH it has no metadata, which the
# doctor reports as a failing row (tested below with the metadata hidden).
needs_metadata = pytest.mark.skipif(not _installed(), reason="chatkit runs from a source tree, not pip-installed")


@needs_metadata
def test_this_machine_passes_offline(monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rows = doctor.run_checks()
    names = [r.check for r in rows]
    assert names[:2] == ["Python", "torch"] and "transformers" in names and "RAM" in names
    assert {r.check: r.status for r in rows}["embedded model"] == "ok"
    assert {r.check: r.status for r in rows}["Hugging Face Hub"] == "ok"  # offline on purpose is fine
    assert not any(r.failed for r in rows), doctor.report(rows)
    assert doctor.main([]) == 0
    printed = capsys.readouterr().out
    assert printed.rstrip().endswith("ready: no check failed") and "Loading weights" not in printed


def test_missing_and_wrong_packages_fail_with_the_command_that_fixes_them(monkeypatch):
    missing, too_old = doctor.package_rows(
        [Requirement("no-such-package-for-chatkit>=1.0"), Requirement("transformers>=99")]
    )
    assert missing.failed and missing.found == "not installed (needs >=1.0)"
    assert missing.fix == "pip install 'no-such-package-for-chatkit>=1.0'"
    assert too_old.failed and too_old.found.endswith("needs >=99") and too_old.fix == "pip install 'transformers>=99'"
    monkeypatch.setitem(sys.modules, "google.colab", type(sys)("google.colab"))
    (on_colab,) = doctor.package_rows([Requirement("transformers>=99")])
    assert "Colab install cell would upgrade it" in on_colab.found


@needs_metadata
def test_chatkit_requirements_come_from_its_metadata():
    names = {r.name for r in doctor.requirements()}
    assert {"torch", "transformers", "huggingface_hub", "ipywidgets"} <= names


def test_a_failure_makes_the_exit_status_non_zero(monkeypatch, capsys):
    monkeypatch.setattr(doctor, "requirements", lambda: [Requirement("no-such-package-for-chatkit")])
    assert doctor.main(["--no-models"]) == 1
    out = capsys.readouterr().out
    assert "fix: pip install 'no-such-package-for-chatkit'" in out
    assert out.rstrip().endswith("1 check(s) failed: no-such-package-for-chatkit")


def test_an_old_python_fails(monkeypatch):
    monkeypatch.setattr(doctor, "MIN_PYTHON", (99, 0))
    row = doctor.python_row()
    assert row.failed and "needs 99.0 or newer" in row.found


def test_the_hub_row_with_a_fake_hub(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(doctor, "hub_reachable", lambda: True)
    assert doctor.hub_row().status == "ok"
    monkeypatch.setattr(doctor, "hub_reachable", lambda: False)
    down = doctor.hub_row()
    assert down.status == "warn" and not down.failed and "embedded model" in down.found


def test_hub_models_in_the_local_cache_load_offline(tmp_path, monkeypatch):
    from huggingface_hub import constants

    commit = "0" * 40  # the layout huggingface_hub writes: refs/main names a snapshot folder
    repo = tmp_path / "models--org--cached"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "snapshots" / commit / "config.json").write_text("{}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    embedded, vision, cached, absent = doctor.model_rows(hub_models=("org/cached", "org/absent"))
    assert embedded.status == "ok" and vision.status == "ok" and "vision-language model" in vision.found
    assert cached.status == "ok" and "loads offline" in cached.found
    assert absent.status == "warn" and absent.fix == "download it while online: hf download org/absent"


def test_python_m_chatkit_without_a_command_prints_usage(capsys):
    from chatkit.__main__ import main

    assert main([]) == 2
    assert "python -m chatkit {doctor,prefetch}" in capsys.readouterr().err


def test_a_clone_that_was_never_installed_fails_one_row_with_its_fix_and_the_rest_still_runs(monkeypatch, capsys):
    requires = doctor.metadata.requires

    def no_chatkit_metadata(name):
        if name == "chatkit":  # a source clone on PYTHONPATH: importable, but pip never installed it
            raise doctor.metadata.PackageNotFoundError(name)
        return requires(name)

    monkeypatch.setattr(doctor.metadata, "requires", no_chatkit_metadata)
    (row,) = doctor.package_rows()
    assert row.check == "chatkit" and row.failed and "not installed as a package" in row.found
    assert row.fix == "run `pip install -e .` in the clone (or `make setup`)"
    assert doctor.main(["--no-models"]) == 1
    out = capsys.readouterr().out
    assert "RAM" in out and "16-bit maths" in out and "Hugging Face Hub" in out
    assert out.rstrip().endswith("1 check(s) failed: chatkit")


def test_without_torch_the_rows_that_need_it_fail_with_the_fix_and_the_rest_still_runs(monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now fails as if it were not installed
    (ram,) = doctor.memory_rows()
    assert ram.check == "RAM" and "available of" in ram.found
    maths = doctor.maths_row()
    assert maths.failed and maths.found == "not checked: torch is missing" and maths.fix == "pip install torch"
    rows = {row.check: row for row in doctor.run_checks()}
    assert rows["embedded model"].failed and rows["embedded model"].fix == "pip install torch"
    assert rows["embedded vision model"].failed
    assert rows["Hugging Face Hub"].status == "ok"
    assert doctor.main([]) == 1
    assert "fix: pip install torch" in capsys.readouterr().out
