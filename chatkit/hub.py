"""The Hugging Face Hub, seen from a notebook: which model to use, whether we may, what it is.

- `default_model()`: what a notebook runs on: `CHATKIT_MODEL`, else the embedded model offline, else
  `DEFAULT_HUB_MODEL`; `embedded_model_path()` / `embedded_draft_path()`: the models shipped in chatkit.
- `hub_reachable()`: a bounded TCP check (never a long hang on bad wifi); `hf_token()`: the token from
  `HF_TOKEN` or a Colab secret, never a prompt; `check_access(name)`: may I download it?
- `hub_error_message(name, error)`: the one place where the Hub's errors (offline, gated, unknown
  repository, a malformed name) become words that say what to do next.
- `model_facts(name)`: a model's `config.json` and published size, from a folder, the Hub (no
  weights downloaded) or chatkit's offline catalogue. Sizing asks it through one door,
  `chatkit.counting.model_ref`, once per model.

Example:
    >>> describe_model(embedded_model_path())
    "chatkit's embedded model (offline)"
    >>> model_facts("Mixtral-8x7B-Instruct-v0.1", online=False).config["num_local_experts"]
    8
"""

import json
import os
import socket
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

from .catalog import CATALOG, hub_safetensors_source

# The Hub model used when online and nothing else is asked for. SmolLM2-360M-Instruct: ungated
# (Apache-2.0), ~0.7 GB in bf16, so it downloads quickly, fits Colab's free tier and a laptop's RAM,
# and decodes at a usable speed on a CPU. Its chat template supports a system message.
DEFAULT_HUB_MODEL = "HuggingFaceTB/SmolLM2-360M-Instruct"

# The Hub model for tool calling (notebook 07) when online and nothing else is asked for. SmolLM2's
# instruct chat templates write no `tools` (SmolLM2-135M-Instruct's, checked, has no tools branch);
# Qwen2.5-0.5B-Instruct's does, in the same Hermes style as the embedded model
# (`<tool_call>{"name": ..., "arguments": {...}}</tool_call>`), and `transformers serve` knows how to
# read it back. Ungated (Apache-2.0), ~1 GB in bf16.
DEFAULT_TOOLS_MODEL = "Qwen/Qwen2.5-0.5B-Instruct"

# The Hub model that thinks (notebook 09) when online and nothing else is asked for. Qwen3-0.6B: ungated
# (Apache-2.0), ~1.5 GB in bf16; its chat template switches thinking with `enable_thinking` (on by default)
# and writes the thought as `<think>...</think>`, the format of the embedded model's thinking.
DEFAULT_THINKING_MODEL = "Qwen/Qwen3-0.6B"

# The Hub model that sees (notebook 10) when online. SmolVLM-256M-Instruct: ungated (Apache-2.0), ~0.5 GB in
# bf16; a SigLIP encoder and SmolLM2-135M (Idefics3 architecture), each 512x512 tile of a picture as 64 tokens.
DEFAULT_VISION_MODEL = "HuggingFaceTB/SmolVLM-256M-Instruct"

# Environment variable that overrides the model every notebook uses.
MODEL_ENV_VAR = "CHATKIT_MODEL"

EMBEDDED_DIR = Path(__file__).parent / "embedded"


def embedded_model_path():
    """Folder of the chat model shipped inside chatkit: works offline with `pipeline` and `from_pretrained`."""
    return str(EMBEDDED_DIR / "chat")


def embedded_vision_path():
    """Folder of the vision-language model shipped inside chatkit (the embedded chat model with eyes)."""
    return str(EMBEDDED_DIR / "vision")


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


def default_model(tools=False, thinking=False, vision=False):
    """The model a notebook should use: `CHATKIT_MODEL`, else the embedded model offline (its vision-language
    model with `vision=True`), else the Hub default (`DEFAULT_TOOLS_MODEL` when the notebook needs a model
    that calls tools, `DEFAULT_THINKING_MODEL` one that thinks, `DEFAULT_VISION_MODEL` one that sees)."""
    chosen = os.environ.get(MODEL_ENV_VAR, "").strip()
    if chosen:
        return chosen
    if not hub_reachable():
        return embedded_vision_path() if vision else embedded_model_path()
    if vision:
        return DEFAULT_VISION_MODEL
    return DEFAULT_THINKING_MODEL if thinking else DEFAULT_TOOLS_MODEL if tools else DEFAULT_HUB_MODEL


def describe_model(model):
    """A short, machine-independent description of a model id or path, for printing."""
    if str(model) == embedded_model_path():
        return "chatkit's embedded model (offline)"
    if str(model) == embedded_draft_path():
        return "chatkit's embedded draft model (offline)"
    if str(model) == embedded_vision_path():
        return "chatkit's embedded vision-language model (offline)"
    return str(model)


# ----------------------------------------------------------------------------- names and errors
def _looks_like_a_path(name):
    return name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1


def name_problem(name):
    """Why `name` is neither an existing folder nor a valid Hub id, in words; None when it may be either.

    Example:
        >>> name_problem("HuggingFaceTB/SmolLM2-360M-Instruct") is None
        True
        >>> print(name_problem(""))
        The model name is empty. Pass a Hub id like 'HuggingFaceTB/SmolLM2-360M-Instruct' or a local folder with a config.json.
    """
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    example = f"a Hub id like {DEFAULT_HUB_MODEL!r}"
    if not isinstance(name, (str, os.PathLike)):
        return f"The model must be a name or a folder (a string), not {type(name).__name__}. Pass {example}."
    name = str(name).strip()
    if not name:
        return f"The model name is empty. Pass {example} or a local folder with a config.json."
    if Path(name).expanduser().is_dir():
        return None
    if _looks_like_a_path(name):
        return f"There is no folder {name!r}, and it is not a valid Hub id either. Check the path, or pass {example}."
    try:
        validate_repo_id(name)
    except HFValidationError:
        return (
            f"{name!r} is not a local folder, and not a valid Hub id ('owner/name' of letters, "
            f"digits, '-', '_' and '.'). Pass {example} or an existing folder."
        )
    return None


def _offline_message(name):
    return (
        f"{name!r} is not in the local cache and the Hub cannot be reached (offline, or "
        "HF_HUB_OFFLINE=1). Connect once to download it, or use the model shipped with "
        "chatkit, which works offline: chatkit.embedded_model_path()."
    )


def hub_error_message(name, error):
    """A helpful message for a Hub error found in `error`'s chain (gated, unknown, offline), or None."""
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
        message = hub_error_message(name, error)
        if message is None:
            raise
        return message
    return f"{name!r}: access granted; it can be downloaded with your token (or without one)."


# ------------------------------------------------------------------------------ facts per model
@dataclass(frozen=True)
class ModelFacts:
    """A model's architecture (config.json fields) and published parameter count, and where each came from."""

    label: str
    config: dict
    source: str  # where the config came from
    params: float | None = None  # published total
    params_source: str = ""
    active_params: float | None = None
    active_source: str = ""
    licence: str = ""
    message: str = ""  # what happened, e.g. why the offline catalogue was used


def find_in_catalog(name):
    """The catalogue entry for a repo id or a bare model name (case-insensitive), or None.

    Example:
        >>> find_in_catalog("meta-llama/meta-llama-3-8b-instruct").name
        'Meta-Llama-3-8B-Instruct'
    """
    wanted = str(name).strip().lower()
    for entry in CATALOG.values():
        if wanted in (entry.repo_id.lower(), entry.name.lower()):
            return entry
    return None


def _from_entry(entry, message):
    return ModelFacts(
        label=entry.repo_id,
        config=dict(entry.config),
        source="chatkit's offline catalogue",
        params=entry.params,
        params_source=entry.params_source,
        active_params=entry.active_params,
        active_source=entry.active_source or "",
        licence=entry.licence,
        message=message,
    )


def _hub_config(repo_id, local_only):
    from huggingface_hub import hf_hub_download

    path = hf_hub_download(repo_id, "config.json", local_files_only=local_only)
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _hub_safetensors_total(repo_id):
    from huggingface_hub import HfApi

    info = HfApi().model_info(repo_id, expand=["safetensors"])
    return info.safetensors.total if info.safetensors else None


def _from_folder(name, folder):
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise LookupError(f"The folder {describe_model(name)!r} has no config.json.")
    config = json.loads(config_file.read_text(encoding="utf-8"))
    return ModelFacts(label=describe_model(name), config=config, source="config.json in the model folder")


def _from_hub(repo_id, entry, reachable):
    """ModelFacts from the Hub (or its local cache); raises OSError/ValueError when it has no config."""
    config = _hub_config(repo_id, local_only=not reachable)
    total, total_source = None, ""
    if reachable:
        try:
            total = _hub_safetensors_total(repo_id)
        except Exception:  # the count is a bonus: the config alone sizes the model
            total = None
        total_source = hub_safetensors_source(repo_id) if total else ""
    if total is None and entry is not None:
        total, total_source = entry.params, entry.params_source
    return ModelFacts(
        label=repo_id,
        config=config,
        source="config.json from the Hugging Face Hub"
        if reachable
        else "config.json from the local Hugging Face cache",
        params=total,
        params_source=total_source,
        active_params=entry.active_params if entry else None,
        active_source=(entry.active_source or "") if entry else "",
        licence=entry.licence if entry else "",
    )


def model_facts(name, online=None):
    """Architecture and published size of a model: from a folder, the Hub, or chatkit's catalogue.

    1. A local folder with a config.json (e.g. `chatkit.embedded_model_path()`): read it.
    2. The Hub (unless offline): the repository's real `config.json` (no weights) and the Hub's exact
       count of the parameters in its safetensors files. A config already in the local Hugging Face
       cache is used offline too.
    3. Otherwise chatkit's offline catalogue (`chatkit.catalog.CATALOG`), saying why in `.message`.
    Raises LookupError when none of them knows the model.

    online: None asks the Hub when it is reachable; False never asks.
    """
    name = str(name).strip()
    folder = Path(name).expanduser()
    if name and folder.is_dir():
        return _from_folder(name, folder)

    entry = find_in_catalog(name)
    repo_id = entry.repo_id if entry else name
    reachable = False if online is False else hub_reachable()
    reason = "online=False" if online is False else "the Hub cannot be reached (no network, or HF_HUB_OFFLINE=1)"
    if "/" in repo_id and online is not False:
        try:
            return _from_hub(repo_id, entry, reachable)
        except (OSError, ValueError) as error:  # offline and not cached, gated, unknown repo
            if reachable:
                reason = hub_error_message(repo_id, error) or (
                    f"the Hub did not return {repo_id}'s config.json ({type(error).__name__})"
                )
    if entry is not None:
        return _from_entry(
            entry,
            f"{reason.rstrip('.')}: using chatkit's offline catalogue for {entry.repo_id} "
            "(architecture copied from its config.json on the Hub).",
        )
    raise LookupError(
        f"{name!r} is not a local folder, not in chatkit's offline catalogue, and its config.json could "
        f"not be read from the Hub ({reason}). Known offline: {', '.join(e.name for e in CATALOG.values())}."
    )
