"""chatkit.machine: this machine's memory, accelerator, CPU threads and features, and common hardware."""

import pytest
import torch

from chatkit import machine


# ----------------------------------------------------------------------------------- memory
def test_machine_memory():
    ram = machine.machine_memory("cpu")
    assert ram.device == "cpu" and ram.total_bytes >= ram.available_bytes > 0
    assert ram.describe().startswith("system RAM: ")
    with pytest.raises(ValueError, match="device must be"):
        machine.machine_memory("tpu")


def test_machine_memory_describes_itself_in_binary_units():
    assert machine.MachineMemory("cpu", 16 * 2**30, 10**5).describe() == "system RAM: 97.7 KiB available of 16.0 GiB"
    assert machine.MachineMemory("cuda", 2**30, 2**29).describe() == "GPU memory: 512.0 MiB available of 1.0 GiB"


def test_cuda_memory_or_a_clear_error_without_a_gpu():
    if torch.cuda.is_available():
        gpu = machine.machine_memory("cuda")
        assert gpu.device == "cuda" and gpu.total_bytes >= gpu.available_bytes > 0
        assert machine.machine_memory().device == "cuda"  # the GPU is what a model uses, when there is one
    else:
        with pytest.raises(ValueError, match="no CUDA GPU"):
            machine.machine_memory("cuda")
        assert machine.machine_memory().device == "cpu"


def test_system_ram_is_total_and_available():
    total, available = machine.system_ram()
    assert isinstance(total, int) and isinstance(available, int)
    assert total >= available > 0


# ---------------------------------------------------------------------------------- devices
def test_device_name():
    name = machine.device_name()
    if torch.cuda.is_available():
        assert name.startswith("cuda (") and name.endswith(" GiB)")
    elif torch.backends.mps.is_available():
        assert name == "mps (Apple GPU)"
    else:
        assert name == "cpu"


def test_cpu_features_are_a_sorted_subset_of_the_fast_16bit_flags():
    features = machine.cpu_features()
    assert features is None or (features == sorted(features) and set(features) <= set(machine.FAST_16BIT_FLAGS))


def test_set_threads_sets_and_validates(monkeypatch):
    assert machine.set_threads(1) == 1 == torch.get_num_threads()
    monkeypatch.setenv(machine.THREADS_ENV_VAR, "1")
    assert machine.set_threads() == 1
    monkeypatch.setenv(machine.THREADS_ENV_VAR, "two")
    with pytest.raises(ValueError, match="CHATKIT_THREADS"):
        machine.set_threads()
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match="threads"):
            machine.set_threads(bad)


# --------------------------------------------------------------------------------- hardware
def test_your_machine_is_detected():
    here = machine.your_machine()
    assert here.memory_bytes > 2**30 and here.name.startswith("this machine")


def test_common_hardware_names_and_memory():
    names = [h.name for h in machine.COMMON_HARDWARE]
    assert names[:2] == ["Colab T4", "24 GB GPU"] and len(set(names)) == len(names)
    by_name = {h.name: h for h in machine.COMMON_HARDWARE}
    assert by_name["Colab T4"].memory_gib == 15 and by_name["24 GB GPU"].memory_gib == 24
    assert all(h.memory_bytes > 0 and h.note for h in machine.COMMON_HARDWARE)


def test_on_colab_follows_the_google_colab_module(monkeypatch):
    import sys

    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert machine.on_colab() is False
    monkeypatch.setitem(sys.modules, "google.colab", type(sys)("google.colab"))
    assert machine.on_colab() is True
