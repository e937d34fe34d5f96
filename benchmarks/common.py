"""What the benchmark scripts share: the CPU's name, and the time of one call with the device synchronized.

Imported by decode.py and peer.py, which run as scripts from this folder (`python benchmarks/decode.py`), so
Python finds this module beside them.
"""

import platform
import time

import torch

from chatkit import speed


def cpu_name():
    """The CPU's model name (from /proc/cpuinfo on Linux), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def timed(fn):
    """Seconds `fn()` takes under `torch.inference_mode()`, a GPU (if any) synchronized before and after."""
    speed.synchronize("cuda" if torch.cuda.is_available() else "cpu")
    start = time.perf_counter()
    with torch.inference_mode():
        fn()
    speed.synchronize("cuda" if torch.cuda.is_available() else "cpu")
    return time.perf_counter() - start
