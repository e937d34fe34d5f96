"""Choosing and loading a chat model: the embedded offline model, the Hub default, safe loading.

`default_model()` picks what a notebook runs on; `load_model()` wraps `from_pretrained` with safe
defaults (safetensors only, no remote code, `dtype="auto"`) and turns the Hub's errors (offline,
gated, unknown repo) into messages that say what to do next.

Example:
    >>> model, tokenizer = load_model(embedded_model_path())   # doctest: +SKIP
"""

import os
import socket
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

# The Hub model used when online and nothing else is asked for. SmolLM2-360M-Instruct: ungated
# (Apache-2.0), ~0.7 GB in bf16, so it downloads quickly, fits Colab's free tier and a laptop's RAM,
# and decodes at a usable speed on a CPU. Its chat template supports a system message.
DEFAULT_HUB_MODEL = "HuggingFaceTB/SmolLM2-360M-Instruct"

# Environment variable that overrides the model every notebook uses.
MODEL_ENV_VAR = "CHATKIT_MODEL"

EMBEDDED_DIR = Path(__file__).parent / "embedded"


def embedded_model_path():
    """Folder of the chat model shipped inside chatkit: works offline with `pipeline` and `from_pretrained`."""
    return str(EMBEDDED_DIR / "chat")


def embedded_draft_path():
    """Folder of the small draft model (same tokenizer as the embedded model) for assisted generation."""
    return str(EMBEDDED_DIR / "draft")


def _env_flag(name):
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def hub_offline_requested():
    """True when the environment asks the Hugging Face clients to stay offline."""
    return _env_flag("HF_HUB_OFFLINE") or _env_flag("TRANSFORMERS_OFFLINE")


@lru_cache(maxsize=None)
def _can_connect(host, port, timeout):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def hub_reachable(timeout=1.5):
    """True when the Hub's host accepts a TCP connection within `timeout` seconds (cached).

    A connection attempt is cheap and bounded; an HTTP request through the Hub client could wait
    for its own, much longer, time-outs on a bad network.
    """
    if hub_offline_requested():
        return False
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    return _can_connect(url.hostname, port, timeout)


def default_model():
    """The model a notebook should use: `CHATKIT_MODEL`, else the embedded model offline, else the Hub default."""
    chosen = os.environ.get(MODEL_ENV_VAR, "").strip()
    if chosen:
        return chosen
    if not hub_reachable():
        return embedded_model_path()
    return DEFAULT_HUB_MODEL


def describe_model(model):
    """A short, machine-independent description of a model id or path, for printing."""
    if str(model) == embedded_model_path():
        return "chatkit's embedded model (offline)"
    if str(model) == embedded_draft_path():
        return "chatkit's embedded draft model (offline)"
    return str(model)


class ModelLoadError(OSError):
    """A model could not be loaded; the message says why and what to do about it."""


def _hub_error_message(name, error):
    """A helpful message for a Hub error found in `error`'s chain, or None if it is not one."""
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
    )

    chain, seen = [], error
    while seen is not None and len(chain) < 10:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    for err in chain:
        if isinstance(err, GatedRepoError):
            return (
                f"{name!r} is a gated model: its authors ask you to accept their licence first. "
                f"1) Open https://huggingface.co/{name} while logged in and request access. "
                "2) Create a read token at https://huggingface.co/settings/tokens. "
                "3) Provide it without typing it into the notebook: set the HF_TOKEN environment "
                "variable, or in Colab add a secret named HF_TOKEN (key icon in the left bar). "
                f"Or pick an ungated model, e.g. {DEFAULT_HUB_MODEL!r}."
            )
        if isinstance(err, RepositoryNotFoundError):
            return (
                f"{name!r} was not found on the Hugging Face Hub (or it is private). Check the "
                "spelling 'owner/name' on https://huggingface.co/models, or pass a local folder."
            )
        if isinstance(err, (LocalEntryNotFoundError, OfflineModeIsEnabled)):
            return _offline_message(name)
    return None


def _offline_message(name):
    return (
        f"{name!r} is not in the local cache and the Hub cannot be reached (offline, or "
        "HF_HUB_OFFLINE=1). Connect once to download it, or use the model shipped with "
        "chatkit, which works offline: chatkit.embedded_model_path()."
    )


def _raise_helpful(name, error):
    message = _hub_error_message(name, error)
    if message is None:
        raise error
    raise ModelLoadError(message) from error


def load_tokenizer(name, **kwargs):
    """`AutoTokenizer.from_pretrained` with the same helpful errors as `load_model`."""
    from transformers import AutoTokenizer

    kwargs.setdefault("trust_remote_code", False)
    try:
        return AutoTokenizer.from_pretrained(name, **kwargs)
    except OSError as error:
        _raise_helpful(name, error)


def load_model(name, dtype="auto", device_map="auto", allow_oversize=False, **kwargs):
    """Load a causal LM and its tokenizer with safe defaults; return `(model, tokenizer)`.

    Defaults: `dtype="auto"` (the checkpoint's own dtype), safetensors only, no remote code,
    `device_map="auto"` (GPU when there is one). Any `from_pretrained` keyword may be passed
    (`quantization_config=...`, `dtype=torch.bfloat16`, ...).

    Memory guard: before any weight is read, the need is estimated from the config
    (`chatkit.memory.check_fits`); when it exceeds the memory available (GPU memory, else RAM),
    `chatkit.memory.NotEnoughMemoryError` names the smaller options. `allow_oversize=True` skips it.
    """
    from transformers import AutoConfig, AutoModelForCausalLM

    from .memory import guard_loading

    kwargs.setdefault("use_safetensors", True)
    kwargs.setdefault("trust_remote_code", False)
    tokenizer = load_tokenizer(name, trust_remote_code=kwargs["trust_remote_code"])
    try:
        config = AutoConfig.from_pretrained(name, trust_remote_code=kwargs["trust_remote_code"])
    except OSError as error:
        _raise_helpful(name, error)
    except ValueError:  # an architecture transformers does not know: from_pretrained will say so
        config = None
    if config is not None:
        guard_loading(name, config, dtype, kwargs.get("quantization_config"), device_map, allow_oversize)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            name, dtype=dtype, device_map=device_map, **kwargs
        )
    except OSError as error:
        _raise_helpful(name, error)
    model.eval()
    return model, tokenizer


def hf_token():
    """The Hugging Face token from `HF_TOKEN` or, in Colab, the secret named HF_TOKEN; None if neither.

    Never prompts (an interactive `login()` would hang a headless run), never prints the token.
    """
    token = os.environ.get("HF_TOKEN", "").strip()
    if token:
        return token
    try:
        from google.colab import userdata  # only importable inside Colab

        return userdata.get("HF_TOKEN") or None
    except Exception:  # not in Colab, no such secret, or access to it not granted
        return None


def check_access(name):
    """Ask the Hub whether `name` can be downloaded with the current token, without downloading it.

    Returns a message for the reader: access granted, or what is wrong (offline, gated, unknown).
    """
    if not hub_reachable():
        return _offline_message(name)
    from huggingface_hub import auth_check

    try:
        auth_check(name, token=hf_token())
    except Exception as error:
        message = _hub_error_message(name, error)
        if message is None:
            raise
        return message
    return f"{name!r}: access granted; it can be downloaded with your token (or without one)."
