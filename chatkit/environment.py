"""Quiet, seeded set-up for a notebook: one call at the top, nothing on stderr afterwards.

Progress bars, deprecation lines and library warnings are useful in a terminal but make notebook
outputs noisy and unreproducible (nbval compares stderr too). `setup()` turns them off at the source,
seeds every random generator, prints what the notebook runs on, and returns the model to use.

Example:
    >>> model_id = setup(show=False)
    >>> import os; os.environ["HF_HUB_DISABLE_PROGRESS_BARS"]
    '1'
    >>> sorted(package_versions(["torch", "no-such-package"]).items())[0]
    ('no-such-package', 'not installed')
"""

import logging
import os
import platform
import warnings
from importlib.metadata import PackageNotFoundError, version

from .hub import default_model, describe_model
from .machine import device_name

# The libraries a notebook's output depends on, printed by `setup()` so a reader can compare.
PACKAGES = ("torch", "transformers", "tokenizers", "accelerate", "huggingface_hub", "bitsandbytes")


def quiet():
    """Silence progress bars, info logs and known-harmless warnings of the stack, at their source.

    The environment variables come first: huggingface_hub reads them once, when it is first imported,
    so they are set before this function imports transformers (which imports huggingface_hub).
    """
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers
    from huggingface_hub.utils import disable_progress_bars

    disable_progress_bars()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    # bitsandbytes logs CPU-kernel fallbacks at WARNING level; they change nothing for a reader.
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*MatMul8bitLt.*")
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")


def seed_everything(seed=0):
    """Seed Python, NumPy and torch (CPU and GPU) so sampled outputs repeat."""
    import transformers

    transformers.set_seed(seed)


def package_versions(packages=PACKAGES):
    """{package: version} for the packages given; 'not installed' where one is missing."""
    found = {}
    for name in packages:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def setup(seed=0, show=True, tools=False, versions=False, thinking=False, vision=False):
    """Quiet logs, seed everything, print what the notebook runs on; return the model id or path to use.

    The model comes from `chatkit.default_model(tools, thinking, vision)`: `CHATKIT_MODEL` if set, the
    embedded model when offline, otherwise a small instruct model from the Hub (one that calls tools, with
    `tools=True`; one that thinks, with `thinking=True`; one that sees pictures, with `vision=True`).
    It prints one line (transformers and torch versions, the device, the model); `versions=True` (the
    first notebook) prints Python's and every library's version, a line each.
    """
    quiet()
    seed_everything(seed)
    model = default_model(tools=tools, thinking=thinking, vision=vision)
    if show and versions:
        print(f"python: {platform.python_version()}")
        for name, ver in package_versions().items():
            print(f"{name}: {ver}")
        print(f"device: {device_name()}")
        print(f"model: {describe_model(model)}")
    elif show:
        found = package_versions(("transformers", "torch"))
        print(
            f"transformers {found['transformers']}, torch {found['torch']}, device: {device_name()}, "
            f"model: {describe_model(model)}"
        )
    return model
