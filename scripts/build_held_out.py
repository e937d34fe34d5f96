"""Write chatkit/data/held_out.json: the held-out chats and questions the notebooks evaluate on.

They come from the course's corpus generator (training/corpus.py) with seeds that training does not
use, and ship inside chatkit so that a notebook installed from a wheel (Colab) has them too.
tests/test_held_out.py checks that the file equals what this script writes.

    python scripts/build_held_out.py
"""

import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chatkit.held_out import CHATS_SEED, DATA_FILE  # noqa: E402
from training.corpus import conversations, tool_conversation  # noqa: E402
from training.evaluate import EVAL_SEED  # noqa: E402
from training.thinking import thinking_questions  # noqa: E402

N_CHATS = 64  # for perplexity and next-token agreement (notebook 04)
N_QUESTIONS = 96  # conversations scanned for their first checked question (notebook 03)
N_CALCULATOR = 48  # sums, differences and products for the calculator tools (notebook 07)
N_THINKING = 60  # questions where thinking pays, and facts where it does not (notebook 09)


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


def calculator_questions(n=N_CALCULATOR, seed=CHATS_SEED):
    """Arithmetic questions from conversations with tools, asked alone: the tool that answers, the result."""
    found, rng = [], random.Random(seed)
    while len(found) < n:
        for turn in tool_conversation(rng=rng).turns:
            if turn.tool_call and turn.category == "arithmetic" and not turn.followup:
                found.append(
                    {
                        "chat": [{"role": "user", "content": turn.user}],
                        "answer": turn.answer,
                        "category": "arithmetic",
                        "tool": turn.tool_call["name"],
                    }
                )
                break
    return found


def build():
    return {
        "source": f"training/corpus.py: chats and calculator questions with seed {CHATS_SEED}, "
        f"questions with seed {EVAL_SEED}; training/thinking.py: thinking questions with seed {CHATS_SEED}",
        "chats": [conv.messages for conv in conversations(N_CHATS, seed=CHATS_SEED)],
        "questions": questions(),
        "calculator_questions": calculator_questions(),
        "thinking_questions": thinking_questions(N_THINKING, seed=CHATS_SEED),
    }


def text():
    return json.dumps(build(), indent=1, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    DATA_FILE.write_text(text(), encoding="utf-8")
    print(DATA_FILE.relative_to(ROOT))
