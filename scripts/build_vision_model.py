"""Build chatkit's embedded vision-language model: the embedded chat model given eyes (training/vision.py).

    python scripts/build_vision_model.py [--chat DIR] [--out DIR] [--threads N] [--quick] [--from-stage N]

It reads the chat model in `--chat` (default: chatkit/embedded/chat, which scripts/build_embedded_model.py
writes), adds a new vision tower and projector (seeded), pretrains the tower to name what each patch shows
(stage 1, checkpointed in build/<out>-tower.pt; `--from-stage 2` reuses it), then trains the projector and the
language model on pictures drawn from seeds (`chatkit.pictures`) with text conversations mixed in (stage 2),
then more on the kinds of question stage 2 leaves weakest (stage 3, from the files in `--out`: `--from-stage
3`), then the same with the tower learning too (stage 4: `--from-stage 4`), then on circles and triangles side
by side (stage 5: `--from-stage 5`), evaluates on held-out pictures and on the text held-out conversations,
and writes the model, its processor and its card (training/vision_card.md) to `--out`. `--quick` trains a few
steps only (a smoke test, not a usable model). `--card-only` evaluates the model already in `--out` and rewrites
its card.
"""

import argparse
import json
import platform
import string
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chatkit import picture_questions  # noqa: E402
from training import corpus, vision  # noqa: E402
from training.evaluate import EVAL_SEED, evaluate  # noqa: E402

TOWER = dict(steps=1500, batch=32, lr=2e-3, warmup=50, seed=0)
STAGE = dict(steps=3000, batch=16, text_rows=2, lr=2e-3, language_lr=3e-4, warmup=100, seed=0)
# Stage 3: more of what stage 2 left weakest: two pictures compared in 35% of the chats (10% before), and
# questions about colour, position, counts and digits twice as often as the others.
WEAK = ("colour", "position", "count", "text")
FOCUS = dict(
    steps=3000,
    batch=16,
    text_rows=2,
    lr=1e-3,
    language_lr=2e-4,
    warmup=50,
    seed=1,
    compare=0.35,
    types=picture_questions.QUESTION_TYPES + WEAK,
)
# Stage 4: everything learns, the vision tower too (end to end, as SmolVLM and Qwen2.5-VL tune their towers),
# on stage 3's mix, at lower learning rates.
END_TO_END = dict(FOCUS, steps=2000, lr=5e-4, language_lr=1e-4, tower_tuning_lr=3e-4, seed=2)
# Stage 5: stage 4 left colours and descriptions weakest, and most of their misses took a circle for the
# triangle beside it or the other way round; so half the pictures of several things hold a circle and a
# triangle together, and colour and description questions come once more each.
PAIRS = dict(
    END_TO_END,
    lr=3e-4,
    tower_tuning_lr=2e-4,
    seed=4,
    types=FOCUS["types"] + ("colour", "describe"),
    together=("circle", "triangle"),
)
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
    template = string.Template((ROOT / "training" / "vision_card.md").read_text())  # $name: code keeps its braces
    card = template.substitute(
        run,
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
        tower_what=f"{run['tower_what']:.1%}",
        tower_paint=f"{run['tower_paint']:.1%}",
        tower_column=f"{run['tower_column']:.1%}",
        focus_compare=f"{run['focus_compare']:.0%}",
    )
    (out / "README.md").write_text(card)
    print("\n".join(rows + text_rows))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chat", type=Path, default=ROOT / "chatkit" / "embedded" / "chat")
    parser.add_argument("--out", type=Path, default=ROOT / "chatkit" / "embedded" / "vision")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="a few steps only: checks the pipeline runs")
    parser.add_argument(
        "--from-stage",
        type=int,
        choices=(1, 2, 3, 4, 5),
        default=1,
        help="2: reuse stage 1's tower; 3, 4 or 5: go on from the model in --out",
    )
    parser.add_argument("--card-only", action="store_true", help="evaluate the model in --out, rewrite its card")
    args = parser.parse_args(argv)
    stages = [dict(TOWER), dict(STAGE), dict(FOCUS), dict(END_TO_END), dict(PAIRS)]
    if args.quick:
        for stage in stages:
            stage.update(steps=4, batch=2, warmup=1)
    tower, recipe, *later = stages
    checkpoint = ROOT / "build" / f"{args.out.name}-tower.pt"  # stage 1's tower, for --from-stage 2
    if not args.card_only and args.from_stage < 3:
        model, processor = vision.build(args.chat, seed=STAGE["seed"])
        if args.from_stage == 2:  # stage 1's tower and its record
            saved = torch.load(checkpoint)
            model.model.vision_tower.load_state_dict(saved["tower"])
            run = saved["run"]
        else:
            run = vision.pretrain_tower(model, processor, threads=args.threads, **tower)
            checkpoint.parent.mkdir(exist_ok=True)
            torch.save({"tower": model.model.vision_tower.state_dict(), "run": run}, checkpoint)
        run |= vision.train_vision(model, processor, threads=args.threads, **recipe)
        vision.save(model, processor, args.out)
        (args.out / "training_run.json").write_text(json.dumps(run, indent=2) + "\n")
    for number, prefix, stage in zip((3, 4, 5), ("focus", "end_to_end", "pairs"), later):
        if args.card_only or args.from_stage > number:
            continue
        from transformers import AutoModelForImageTextToText, AutoProcessor  # from the files of the stage before

        model = AutoModelForImageTextToText.from_pretrained(args.out)
        processor = AutoProcessor.from_pretrained(args.out)
        run = json.loads((args.out / "training_run.json").read_text())
        record = vision.train_vision(model, processor, threads=args.threads, **stage)
        keys = ("steps", "batch", "lr", "language_lr", "tower_tuning_lr", "seed", "train_minutes")
        run |= {f"{prefix}_{k}": record[k] for k in keys} | {f"{prefix}_compare": stage["compare"]}
        vision.save(model, processor, args.out)
        (args.out / "training_run.json").write_text(json.dumps(run, indent=2) + "\n")
    if args.quick:
        write_card(args.out, args.chat, args.threads, n_questions=9, n_pairs=2, n_convs=2)
    else:
        write_card(args.out, args.chat, args.threads)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
