"""This machine: its memory, its accelerator, its CPU threads, and the hardware people compare it with.

The one place in chatkit that asks what the reader's machine has:

- `machine_memory()`: memory a model can use now (GPU memory when torch sees a CUDA GPU, else RAM:
  the kernel's "available" figure, which counts reclaimable caches as free);
- `device_name()`: the accelerator torch will use, in words; `your_machine()`: this machine as a
  `Hardware` row for "does it fit" tables, next to `COMMON_HARDWARE`;
- `set_threads()`: torch's CPU thread count, from an argument or `CHATKIT_THREADS`;
- `cpu_features()`: the instruction-set extensions that speed up 16-bit maths on a CPU;
- `on_colab()`: whether this is a Google Colab runtime.

Example:
    >>> machine_memory("cpu").total_bytes >= machine_memory("cpu").available_bytes > 0
    True
    >>> [h.name for h in COMMON_HARDWARE][:2]
    ['Colab T4', '24 GB GPU']
"""

import os
import sys
from dataclasses import dataclass

from .formatting import GiB, format_bytes

# The environment variable that sets how many CPU threads the measurements and the fast path use.
THREADS_ENV_VAR = "CHATKIT_THREADS"

# CPU flags (Linux /proc/cpuinfo names) that give 16-bit maths fast kernels.
FAST_16BIT_FLAGS = ("avx512_bf16", "amx_bf16", "avx512_fp16")


# ----------------------------------------------------------------------------------- memory
@dataclass(frozen=True)
class MachineMemory:
    """Memory a model can use on this machine: `device` ('cuda' or 'cpu'), total and available bytes."""

    device: str
    total_bytes: int
    available_bytes: int

    def describe(self):
        where = "GPU memory" if self.device == "cuda" else "system RAM"
        return f"{where}: {format_bytes(self.available_bytes)} available of {format_bytes(self.total_bytes)}"


def system_ram():
    """(total, available) bytes of system RAM: psutil when installed, else /proc/meminfo, else sysconf.

    "Available" is what new allocations can get without swapping (Linux's MemAvailable: free pages
    plus caches the kernel can drop), not only the free pages.
    """
    try:
        import psutil

        vm = psutil.virtual_memory()
        return vm.total, vm.available
    except ImportError:
        pass
    try:
        info = {}
        with open("/proc/meminfo") as f:
            for line in f:
                key, value = line.split(":", 1)
                info[key] = int(value.split()[0]) * 1024
        return info["MemTotal"], info.get("MemAvailable", info["MemFree"])
    except (OSError, KeyError, ValueError):
        try:
            page = os.sysconf("SC_PAGE_SIZE")
            return page * os.sysconf("SC_PHYS_PAGES"), page * os.sysconf("SC_AVPHYS_PAGES")
        except (ValueError, OSError, AttributeError):  # unknown: a conservative 4 GiB
            return 4 * GiB, 4 * GiB


def machine_memory(device=None):
    """A `MachineMemory` for the GPU (`torch.cuda.mem_get_info`) when there is one, else system RAM.

    `device="cpu"` forces system RAM; `device="cuda"` requires a GPU.
    """
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device='cuda' was asked for but torch sees no CUDA GPU; use device='cpu'.")
        free, total = torch.cuda.mem_get_info()
        return MachineMemory("cuda", total, free)
    if device != "cpu":
        raise ValueError(f"device must be 'cuda', 'cpu' or None (pick automatically), not {device!r}.")
    total, available = system_ram()
    return MachineMemory("cpu", total, available)


# ---------------------------------------------------------------------------------- devices
def device_name():
    """A short description of the accelerator torch will use: a CUDA GPU, Apple's MPS, or the CPU."""
    import torch

    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return f"cuda ({props.name}, {props.total_memory / GiB:.0f} GiB)"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps (Apple GPU)"
    return "cpu"


def cpu_features():
    """The flags of `FAST_16BIT_FLAGS` this CPU has (sorted), or None where they cannot be read.

    Example:
        >>> features = cpu_features()
        >>> features is None or set(features) <= set(FAST_16BIT_FLAGS)
        True
    """
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(next(line for line in f if line.startswith("flags")).split(":", 1)[1].split())
    except (OSError, StopIteration):
        return None
    return sorted(flags & set(FAST_16BIT_FLAGS))


def on_colab():
    """True inside a Google Colab runtime (its `google.colab` module is loaded there)."""
    return "google.colab" in sys.modules


def set_threads(threads=None):
    """Set torch's CPU thread count and return it.

    `threads=None` reads `CHATKIT_THREADS`, else keeps torch's current setting. On a busy machine
    fewer threads can be much faster: a thread that waits for a busy core stalls every matrix-vector
    product; one thread per free core is the rule.
    """
    import torch

    if threads is None:
        from_env = os.environ.get(THREADS_ENV_VAR, "").strip()
        if from_env:
            try:
                threads = int(from_env)
            except ValueError:
                raise ValueError(
                    f"{THREADS_ENV_VAR}={from_env!r} is not a whole number; set it to e.g. 1 or 2."
                ) from None
    if threads is not None:
        if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
            raise ValueError(f"threads must be a whole number ≥ 1, got {threads!r}.")
        torch.set_num_threads(threads)
    return torch.get_num_threads()


# --------------------------------------------------------------------------------- hardware
@dataclass(frozen=True)
class Hardware:
    """Somewhere to run a model, and how many bytes of memory a model can use there."""

    name: str
    memory_bytes: int
    note: str = ""

    @property
    def memory_gib(self):
        return self.memory_bytes / GiB


# GPU makers sell memory in GiB-sized "GB": a 24 GB card holds 24 GiB. Programs see a little less
# (the T4's ECC reserves some: 15 GiB visible); the KV cache and the overhead must fit as well.
COMMON_HARDWARE = (
    Hardware("Colab T4", 15 * GiB, "NVIDIA T4, Google Colab's free GPU: 16 GB, 15 GiB visible to programs"),
    Hardware("24 GB GPU", 24 * GiB, "consumer GPU: RTX 3090 / 4090"),
    Hardware("A100/H100 80GB", 80 * GiB, "data-centre GPU"),
    Hardware("H200", 141 * GiB, "data-centre GPU, 141 GB HBM3e"),
    Hardware("16 GB laptop", 16 * GiB, "CPU with 16 GiB RAM, shared with the OS and your other programs"),
)


def your_machine():
    """This machine as a Hardware: its GPUs' memory when torch sees CUDA GPUs, else its RAM.

    On Apple silicon (MPS) the GPU shares the system RAM, so RAM is what counts there too.

    Example:
        >>> your_machine().memory_bytes > 0
        True
    """
    import torch

    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        names = {torch.cuda.get_device_name(i) for i in range(count)}
        memory = sum(torch.cuda.get_device_properties(i).total_memory for i in range(count))
        label = f"{count}× " if count > 1 else ""
        return Hardware(f"this machine ({label}{', '.join(sorted(names))})", int(memory), "GPU memory")
    ram = machine_memory("cpu").total_bytes
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return Hardware("this machine (Apple GPU)", ram, "unified memory, shared with the system")
    return Hardware("this machine (CPU)", ram, "system RAM")
