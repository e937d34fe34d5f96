"""What a real chat model answered, recorded: for lessons the tiny embedded model cannot show.

The embedded model is trained on a small corpus, so some lessons look different on it than on a real
model: a persona it has never seen, or a doubled BOS token, which changes a real model's reply but not
the toy's. `scripts/build_real_model.py --record` runs those chats greedily on SmolLM2-135M-Instruct
(a real chat model we did not train) and stores prompts and replies in
`chatkit/data/real_model_examples.json`; the notebooks print them, labelled, next to the embedded
model's live replies.

Example:
    >>> example = real_model_example("double_bos")
    >>> example["single_bos_reply"] != example["double_bos_reply"]
    True
"""

import json
from functools import lru_cache
from pathlib import Path

DATA_FILE = Path(__file__).parent / "data" / "real_model_examples.json"


@lru_cache(maxsize=1)
def _data():
    return json.loads(DATA_FILE.read_text(encoding="utf-8"))


def real_model_example(name):
    """One recorded example ({"chat": ..., replies...}); KeyError names the ones there are."""
    examples = _data()["examples"]
    if name not in examples:
        raise KeyError(f"no recorded example {name!r}; there are: {', '.join(sorted(examples))}")
    return dict(examples[name])


def recorded_with():
    """The model and the command the examples were recorded with, in words (for printing)."""
    return _data()["model"]
