"""chatkit: the small helpers the notebooks of this course share.

The lesson is transformers itself; chatkit only hides what would distract from it. Each module answers
one question, in layers: a module imports only from the lines above its own, so there is no circle.

    chat, chat_view, catalog,           what is a valid chat, and how does a message look? which models
    dtypes, formatting                  are well known? how many bytes per dtype? how do we print sizes?
    hub                                 which model, may I download it, what does the Hub say about it?
    machine                             what does this machine have (memory, GPU, threads, CPU features)?
    counting                            how many parameters (total, active), from a name or a config?
    sizing                              how much memory in each dtype, with the KV cache; does it fit?
    memory                              how much does a loaded model really take (footprint, peak, KV)?
    loading                             load a model safely, refusing what cannot fit (the memory guard)
    environment                         the quiet, seeded first cell of a notebook: `setup()`
    generation, templating              a reply made by hand, streamed; chat templates and their pitfalls
    held_out, quality                   text the embedded model never saw; what a lower precision
                                        costs on it (agreement, perplexity)
    recorded                            what a real chat model answered, for lessons the toy cannot show
    pictures, picture_questions         the pictures the embedded vision-language model learned to see,
                                        drawn from a seed; the questions asked about them, the answers
    tools                               functions the model may call, and the loop that runs the calls
    thinking                            what a thought costs (tokens, time to the answer); a budget for it
    serving                             one model for a room: start `transformers serve`, chat with it
    speed, toy_models, assisted,        how fast, and why: bandwidth, tokens/s, random models to time,
    fast_decoding, plotting             assisted generation, the recommended fast path, the plots
    llama_cpp                           how fast is llama.cpp on the same model here (its llama-bench)?
    chat_window                         the chat window's widgets: what a learner sees, types into, clicks
    widgets                             a chat window in the notebook (imports ipywidgets when made)
    quiz                                a few questions on each notebook's ideas, the reason after each
    checking                            how is an answer checked? the verdict, need/check, "not answered yet"
    exercises                           is the learner's answer to a notebook's exercise right? a hint if not
    doctor, prefetch, __main__          is this machine ready for the course, and how to fix what is
                                        not? which models to download before a workshop without wifi?
                                        (`python -m chatkit doctor`, `python -m chatkit prefetch`)

The first notebooks call a few names straight from `chatkit` (below); the rest are used through their
module, as `from chatkit import sizing, memory, speed`. Nothing here imports torch, transformers,
huggingface_hub or ipywidgets at import time: each function imports what it needs when called, so
`import chatkit` is quick, and sizing works without a UI stack.
"""

from . import (
    assisted,
    catalog,
    chat,
    chat_view,
    chat_window,
    checking,
    counting,
    doctor,
    dtypes,
    environment,
    exercises,
    fast_decoding,
    formatting,
    generation,
    held_out,
    hub,
    llama_cpp,
    loading,
    machine,
    memory,
    picture_questions,
    pictures,
    plotting,
    prefetch,
    quality,
    quiz,
    recorded,
    serving,
    sizing,
    speed,
    templating,
    thinking,
    tools,
    toy_models,
    widgets,
)
from .chat import validate_chat
from .environment import quiet, seed_everything, setup
from .generation import generation_settings, reply, stream_reply
from .hub import (
    DEFAULT_HUB_MODEL,
    check_access,
    default_model,
    describe_model,
    embedded_draft_path,
    embedded_model_path,
    embedded_vision_path,
    hf_token,
)
from .loading import ModelLoadError, load_model, load_tokenizer
from .templating import (
    FAMILY_TEMPLATES,
    apply_template_with_fallback,
    check_single_bos,
    count_prompt_tokens,
    fit_to_context,
    fold_system_message,
)
from .tools import run_tools
from .widgets import ChatWidget, chat_widget

__version__ = "0.1.0"
