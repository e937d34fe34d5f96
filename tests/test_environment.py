import logging
import subprocess
import sys

import chatkit
from chatkit import environment
from chatkit.environment import PACKAGES


def test_setup_prints_one_line_by_default(capsys):
    model = chatkit.setup(seed=1)
    out = capsys.readouterr().out
    assert model == chatkit.embedded_model_path()
    assert out.count("\n") == 1 and out.startswith("transformers ") and ", torch " in out
    assert f"device: {chatkit.machine.device_name()}, model: chatkit's embedded model (offline)" in out


def test_setup_prints_versions_device_and_model_and_returns_the_embedded_model_offline(capsys):
    model = chatkit.setup(seed=1, versions=True)
    out = capsys.readouterr().out
    assert model == chatkit.embedded_model_path()
    for name in ("python",) + PACKAGES:
        assert f"\n{name}: " in "\n" + out
    assert f"device: {chatkit.machine.device_name()}" in out
    assert "model: chatkit's embedded model (offline)" in out
    assert logging.getLogger("bitsandbytes").level == logging.ERROR


def test_seed_everything_makes_sampling_repeat():
    import torch

    chatkit.seed_everything(3)
    first = torch.rand(3)
    chatkit.seed_everything(3)
    assert torch.equal(first, torch.rand(3))


def test_package_versions_reports_missing_packages():
    assert environment.package_versions(["no-such-package-xyz"]) == {"no-such-package-xyz": "not installed"}


def test_loading_and_generating_after_setup_writes_nothing_to_stderr():
    """What a notebook shows: no progress bars, no warnings, no deprecation lines."""
    code = (
        "import chatkit, torch\n"
        "model_id = chatkit.setup(show=False)\n"
        "from transformers import pipeline\n"
        "pipe = pipeline('text-generation', model_id, dtype='auto', device_map='auto')\n"
        "pipe([{'role': 'user', 'content': 'Hi'}], max_new_tokens=4)\n"
        "pipe.model.to(torch.float32)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
