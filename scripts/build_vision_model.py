"""Build chatkit's embedded vision-language model: the embedded chat model given eyes (training/vision.py).

    python scripts/build_vision_model.py [--chat DIR] [--out DIR] [--steps N] [--threads N] [--quick]

It reads the chat model in `--chat` (default: chatkit/embedded/chat, which scripts/build_embedded_model.py
writes), adds a new vision tower and projector (seeded), trains on pictures drawn from seeds
(`chatkit.pictures`) with text conversations mixed in, evaluates on held-out pictures and on the text
held-out conversations, and writes the model, its processor and its card (training/vision_card.md) to
`--out`. `--quick` trains a few steps only (a smoke test, not a usable model). `--card-only` evaluates the
model already in `--out` and rewrites its card.
"""

import argparse
import json
import platform
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chatkit import picture_questions  # noqa: E402
from training import corpus, vision  # noqa: E402
from training.evaluate import EVAL_SEED, evaluate  # noqa: E402

STAGE = dict(steps=2500, batch=16, text_rows=2, lr=2e-3, language_lr=3e-4, warmup=100, seed=0)
CARD_QUESTIONS, CARD_PAIRS, CARD_CONVERSATIONS = 400, 50, 200
LABELS = {
    "colour": "What colour is the circle?",
    "shape": "What shape are they?",
    "count": "How many squares are there?",
    "position": "What is on the left?",
    "size": "Is the star big or small?",
    "text": "What number is written?",
    "bars": "Which bar is tallest?",
    "describe": "Describe the picture.",
    "compare": "Which picture has more stars? (two pictures)",
}


def write_card(out, chat_dir, threads, n_questions=CARD_QUESTIONS, n_pairs=CARD_PAIRS, n_convs=CARD_CONVERSATIONS):
    """Evaluate the model in `out` and write its README.md from training/vision_card.md."""
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText, AutoProcessor, AutoTokenizer

    model = AutoModelForImageTextToText.from_pretrained(out)
    processor = AutoProcessor.from_pretrained(out)
    seen = vision.evaluate_vision(
        model,
        processor,
        picture_questions.held_out_image_questions(n_questions) + picture_questions.held_out_comparisons(n_pairs),
    )
    rows = [f"| {LABELS[k]} | {n} | {value:.1%} |" for k, (value, n) in seen.items()]
    convs = corpus.conversations(n_convs, seed=EVAL_SEED)
    chat = AutoModelForCausalLM.from_pretrained(chat_dir)
    text = {
        "vision-language model": evaluate(model, processor.tokenizer, convs),
        "chat model": evaluate(chat, AutoTokenizer.from_pretrained(chat_dir), convs),
    }
    vlm, lm = text["vision-language model"], text["chat model"]
    text_rows = [
        f"| {label} | {lm[key][1]} | {lm[key][0]:.1%} | {vlm[key][0]:.1%} |"
        for label, key in (
            ("factual + arithmetic turns correct", "correct"),
            ("persona style present (persona system prompt)", "persona_style"),
            ("replies end with the end token", "stops"),
        )
    ]
    run = json.loads((out / "training_run.json").read_text())
    sizes = sum(p.stat().st_size for p in out.iterdir() if p.name != "README.md")
    card = (
        (ROOT / "training" / "vision_card.md")
        .read_text()
        .format(
            image_table="\n".join(rows),
            text_table="\n".join(text_rows),
            n_questions=n_questions,
            n_pairs=n_pairs,
            n_convs=n_convs,
            parameters=f"{sum(p.numel() for p in model.parameters()):,}",
            vision_parameters=f"{sum(p.numel() for n, p in model.named_parameters() if 'language_model' not in n):,}",
            megabytes=f"{sizes / 1e6:.1f}",
            image_tokens=vision.IMAGE_TOKENS,
            hardware=f"{platform.machine()}, PyTorch {torch.__version__}, {threads} thread(s)",
            **{k: run[k] for k in ("steps", "batch", "text_rows", "lr", "language_lr", "train_minutes")},
        )
    )
    (out / "README.md").write_text(card)
    print("\n".join(rows + text_rows))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chat", type=Path, default=ROOT / "chatkit" / "embedded" / "chat")
    parser.add_argument("--out", type=Path, default=ROOT / "chatkit" / "embedded" / "vision")
    parser.add_argument("--steps", type=int, default=STAGE["steps"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="a few steps only: checks the pipeline runs")
    parser.add_argument("--card-only", action="store_true", help="evaluate the model in --out, rewrite its card")
    args = parser.parse_args(argv)
    if not args.card_only:
        model, processor = vision.build(args.chat, seed=STAGE["seed"])
        recipe = dict(STAGE, steps=args.steps)
        if args.quick:
            recipe.update(steps=4, batch=2, warmup=1)
        run = vision.train_vision(model, processor, threads=args.threads, **recipe)
        vision.save(model, processor, args.out)
        (args.out / "training_run.json").write_text(json.dumps(run, indent=2) + "\n")
    if args.quick:
        write_card(args.out, args.chat, args.threads, n_questions=9, n_pairs=2, n_convs=2)
    else:
        write_card(args.out, args.chat, args.threads)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
