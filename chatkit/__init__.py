"""chatkit: the small helpers the notebooks of this course share.

The lesson is transformers itself; chatkit only hides what would distract from it: quiet set-up,
choosing and loading a model, checking chats. Each module has one concern:

- environment: `setup()` for a notebook's first cell (quiet logs, seeds, versions, device)
- loading: the embedded offline model, the Hub default, `load_model()` with helpful errors
- chat: `validate_chat()`
- generation: `generation_settings()`, `reply()`, `stream_reply()` (the pipeline taken apart)
- templating: `check_single_bos()`, `apply_template_with_fallback()`, `fit_to_context()`, `FAMILY_TEMPLATES`
- widgets: `ChatWidget`, `chat_widget()` (chat with a model in the notebook, replies streaming in)
- sizing: `parse_model_size()`, `count_parameters()`, `estimate_memory()`, `BYTES_PER_PARAM`, "does it fit"
  tables; catalog: `CATALOG` (well-known open chat models' architectures, offline)
- speed: `measure_bandwidth()`, `decode_speed()`, `compare_assisted()`, `prepare_for_decoding()` (the
  recommended fast path); plotting: `plot_speed_vs_bytes()` and the other plots of notebook 05
- memory: `model_footprint()`, `footprint_breakdown()`, `PeakMemory`, `machine_memory()`,
  `measure_kv_cache()`, the memory guard `check_fits()` / `NotEnoughMemoryError`
- quality: `next_token_agreement()`, `perplexity()`, `held_out_chats()` (the cost of a precision)
"""

from .chat import ROLES, validate_chat
from .generation import generation_settings, reply, stream_reply
from .templating import (
    FAMILY_TEMPLATES,
    apply_template_with_fallback,
    check_single_bos,
    count_prompt_tokens,
    fit_to_context,
    fold_system_message,
)
from .environment import device_name, package_versions, quiet, seed_everything, setup
from .loading import (
    DEFAULT_HUB_MODEL,
    ModelLoadError,
    default_model,
    describe_model,
    embedded_draft_path,
    check_access,
    embedded_model_path,
    hf_token,
    hub_reachable,
    load_model,
    load_tokenizer,
)
from .widgets import ChatWidget, chat_widget
from .catalog import CATALOG
from .sizing import (
    BYTES_PER_PARAM,
    COMMON_HARDWARE,
    count_parameters,
    estimate_memory,
    fit_table,
    kv_cache_bytes,
    memory_table,
    model_facts,
    parse_model_size,
    your_machine,
)
from .speed import (
    PUBLISHED_BANDWIDTH,
    compare_assisted,
    decode_speed,
    fast_generate_kwargs,
    measure_bandwidth,
    prepare_for_decoding,
    set_threads,
    weight_bytes_per_token,
)
from .plotting import plot_bars, plot_first_token, plot_speed_vs_bytes
from .memory import (
    NotEnoughMemoryError,
    PeakMemory,
    check_fits,
    disable_bnb_cpu_repacking,
    footprint_breakdown,
    machine_memory,
    measure_kv_cache,
    model_footprint,
)
from .quality import held_out_chats, next_token_agreement, perplexity

__version__ = "0.1.0"
