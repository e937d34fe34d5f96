"""Write chatkit/data/held_out.json: the held-out chats and questions the notebooks evaluate on.

They come from the course's corpus generator (training/corpus.py) with seeds that training does not
use, and ship inside chatkit so that a notebook installed from a wheel (Colab) has them too.
tests/test_held_out.py checks that the file equals what this script writes.

    python scripts/build_held_out.py
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from training.corpus import conversations  # noqa: E402
from training.evaluate import EVAL_SEED  # noqa: E402

from chatkit.held_out import CHATS_SEED, DATA_FILE  # noqa: E402

N_CHATS = 64       # for perplexity and next-token agreement (notebook 04)
N_QUESTIONS = 96   # conversations scanned for their first checked question (notebook 03)


def questions(n_conversations=N_QUESTIONS, seed=EVAL_SEED):
    """(chat up to its first checked question, expected answer, category) per held-out conversation."""
    found = []
    for conv in conversations(n_conversations, seed=seed):
        history = [{"role": "system", "content": conv.system}] if conv.system else []
        for turn in conv.turns:
            history.append({"role": "user", "content": turn.user})
            if turn.answer:
                found.append({"chat": list(history), "answer": turn.answer, "category": turn.category})
                break
            history.append({"role": "assistant", "content": turn.reply})
    return found


def build():
    return {
        "source": f"training/corpus.py: chats with seed {CHATS_SEED}, questions with seed {EVAL_SEED}",
        "chats": [conv.messages for conv in conversations(N_CHATS, seed=CHATS_SEED)],
        "questions": questions(),
    }


def text():
    return json.dumps(build(), indent=1, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    DATA_FILE.write_text(text(), encoding="utf-8")
    print(DATA_FILE.relative_to(ROOT))
