"""Build chatkit's embedded models: train the tokenizer, the chat model and its draft, evaluate, write the cards.

Everything comes from the project's own generated corpus (training/corpus.py); nothing is downloaded.
Writes DIR/chat (the chat model, with its model card README.md) and DIR/draft (the draft model for
assisted generation, same tokenizer). The same seed, thread count and CPU give the same weights;
the tokenizer files are byte-identical for the same seed on any machine.

Usage:
    python scripts/build_embedded_model.py [--out DIR] [--threads N] [--quick]

`--quick` trains for a few steps only (a smoke test of the pipeline, not a usable model).
"""

import argparse
import json
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from training import corpus  # noqa: E402
from training.evaluate import (  # noqa: E402
    EVAL_SEED,
    evaluate,
    evaluate_phrasings,
    evaluate_thinking,
    evaluate_tools,
    load_phrasings,
    tool_conversations,
)
from training.thinking import QUESTION_KINDS, thinking_questions  # noqa: E402
from training.tokenizer import build_tokenizer  # noqa: E402
from training.train import train  # noqa: E402

SEED = 0
# Training recipes (4 x 256 tokens per step, bf16 autocast, cosine schedule; see training/train.py).
CHAT = dict(hidden=192, layers=4, heads=6, ff=512, steps=5000, lr=2e-3, warmup=100, drill_only=0.04, drill_mix=0.3)
# Second stage of the chat model: continues from the first with more arithmetic, at a lower learning rate.
CHAT_ARITHMETIC = dict(steps=1000, lr=5e-4, warmup=30, drill_only=0.0, drill_mix=0.5, arithmetic_weight=0.8)
DRAFT = dict(hidden=64, layers=2, heads=4, ff=176, steps=3000, lr=3e-3, warmup=100, drill_only=0.04, drill_mix=0.3)
# Last stage of both: conversations with tools (training/corpus.py's tool_conversation) for most of the
# documents, whole 512-token rows, the rest as before so the earlier skills stay.
CHAT_TOOLS = dict(
    steps=8000, lr=8e-4, warmup=100, drill_only=0.0, drill_mix=0.2, arithmetic_weight=0.6, tool_mix=0.7, seq_len=512
)
DRAFT_TOOLS = dict(steps=1500, lr=1e-3, warmup=50, drill_only=0.0, drill_mix=0.2, tool_mix=0.6, seq_len=512)
# Last stage of the chat model: the thinking switch (training/thinking.py) and the many ways learners ask
# (training/phrasing.py), mixed with everything before so the earlier skills stay. The draft keeps its
# tools stage: it shares the tokenizer, and thinking needs no new token.
CHAT_THINKING = dict(
    steps=6500,
    lr=6e-4,
    warmup=100,
    drill_only=0.0,
    drill_mix=0.1,
    arithmetic_weight=0.4,
    tool_mix=0.35,
    thinking_mix=0.45,
    rephrase=0.7,
    seq_len=512,
)
# After it, on the thinking stage's mix: more of the questions asked other ways (training/phrasing.py's
# stories, comparisons, terse forms, other names), at a lower learning rate.
CHAT_PHRASING = dict(CHAT_THINKING, steps=3000, lr=4e-4, warmup=50, rephrase=0.85)
CARD_EVAL_CONVERSATIONS = 400
PHRASING_SETS = [ROOT / "training" / f"phrasings_held_out{n}.json" for n in ("", "_2", "_3", "_4")]
THINKING_EVAL_SEED = EVAL_SEED + 11  # held-out thinking questions (training draws from seeds ≥ 7,919)
THINKING_LABELS = {
    "two_numbers": "sums and differences of two numbers",
    "three_numbers": "multi-step sums (three numbers)",
    "word_problem": "two-step word problems",
    "followup": "follow-ups on the earlier answer",
    "fact": "facts (capitals, legs, colours, counts, countries)",
}
PHRASING_LABELS = {
    "plain": "plain questions (no tools in the prompt): answered right",
    "tool_call": "with the four tools listed: the right call (or none)",
}
TOOL_LABELS = {
    "call_right": "a listed tool answers: exactly that call, right arguments",
    "no_call": "no listed tool answers: no call",
    "answer_with_tools": "final answer correct after the call",
    "sums_with_tools": "  sums and differences, with add / subtract",
    "sums_without_tools": "  the same questions, no tools in the prompt",
    "products_with_tools": "  products, with multiply",
    "products_without_tools": "  the same questions, no tools in the prompt",
    "answer_without_call": "questions no tool answers, answered correctly",
    "stops": "replies end with the end token",
}


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def folder_bytes(path):
    return sum(p.stat().st_size for p in Path(path).iterdir() if p.is_file())


def draft_agreement(chat, draft, tokenizer, convs, max_new_tokens=48):
    """Share of the chat model's greedy tokens that the draft predicts too (teacher-forced on them)."""
    agree = total = 0
    with torch.no_grad():
        for conv in convs:
            history = [{"role": "system", "content": conv.system}] if conv.system else []
            for turn in conv.turns:
                history.append({"role": "user", "content": turn.user})
                ids = tokenizer.apply_chat_template(
                    history, add_generation_prompt=True, return_dict=False, return_tensors="pt"
                )
                out = chat.generate(
                    ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens, do_sample=False
                )
                target = out[0, ids.shape[1] :]
                draft_pred = draft(out).logits[0, ids.shape[1] - 1 : -1].argmax(-1)
                agree += int((draft_pred == target).sum())
                total += len(target)
                history.append({"role": "assistant", "content": turn.reply})
    return agree / total


def write_card(out, info):
    text = (ROOT / "training" / "model_card.md").read_text()
    for key, value in info.items():  # not str.format: the card's code examples contain braces
        text = text.replace("{" + key + "}", str(value))
    (out / "chat" / "README.md").write_text(text)


def evaluate_and_write_card(out, threads, eval_n):
    """Evaluate the models in `out`, write the chat model's card; returns the card's figures."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    chat = AutoModelForCausalLM.from_pretrained(out / "chat", dtype=torch.float32)
    draft = AutoModelForCausalLM.from_pretrained(out / "draft", dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(out / "chat")
    runs = {name: json.loads((out / name / "training_run.json").read_text()) for name in ("chat", "draft")}
    convs = corpus.conversations(eval_n, seed=EVAL_SEED)
    figures = {t: evaluate(chat, tokenizer, convs, template=t) for t in (True, False)}
    agreement = draft_agreement(chat, draft, tokenizer, convs[:50])
    tool_convs = tool_conversations(tokenizer, eval_n)
    tool_figures = evaluate_tools(chat, tokenizer, tool_convs)
    tool_rows = [
        f"| {label} | {tool_figures[name][1]} | {tool_figures[name][0]:.1%} |"
        for name, label in TOOL_LABELS.items()
        if name in tool_figures
    ]

    questions = thinking_questions(eval_n // 2, seed=THINKING_EVAL_SEED)
    thought = evaluate_thinking(chat, tokenizer, questions)
    thinking_rows = [
        f"| {THINKING_LABELS[kind]} | {thought[kind + '_on'][1]} | {thought[kind + '_off'][0]:.1%} | "
        f"{thought[kind + '_on'][0]:.1%} | {thought[kind + '_think_tokens'][0]:.1f} |"
        for kind in QUESTION_KINDS
    ]
    # the held-out phrasing sets (each written apart from the generator and the sets before) that are present
    sets = [load_phrasings(path) for path in PHRASING_SETS if path.exists()]
    phrased = [evaluate_phrasings(chat, tokenizer, items) for items in sets]
    names = list(PHRASING_LABELS) + sorted(name for name in phrased[0] if ":" in name)
    phrasing_rows = [
        "| figure | " + " | ".join(f"{p.name}: questions, right" for p in PHRASING_SETS[: len(sets)]) + " |",
        "| --- |" + " --- |" * len(sets),
    ]
    for name in names:
        label = PHRASING_LABELS.get(name) or (
            f"&nbsp;&nbsp;{name.split(':')[1]} ({'no tools' if name.startswith('plain') else 'tools'})"
        )
        cells = [f"{f[name][1]}, {f[name][0]:.1%}" if name in f else "-" for f in phrased]
        phrasing_rows.append(f"| {label} | " + " | ".join(cells) + " |")

    def fig(name, template=True):
        return f"{figures[template].get(name, (float('nan'), 0))[0]:.1%}"

    labels = {
        "correct": "factual + arithmetic turns correct",
        "fact": "  facts (capitals, countries, legs, colours, counts)",
        "city": "  fun things in a city",
        "arithmetic": "  sums and differences",
        "followup": "  dependent follow-ups",
        "explain": "explanations contain the key term",
        "persona_style": "persona style present (persona system prompt)",
        "default_style": "default style (no persona marks) otherwise",
        "stops": "replies end with the end token",
    }
    rows = [
        f"| {label} | {figures[True].get(name, (0, 0))[1]} | {fig(name)} | {fig(name, False)} |"
        for name, label in labels.items()
    ]
    info = {
        "chat_params": f"{n_params(chat):,}",
        "draft_params": f"{n_params(draft):,}",
        "ratio": f"{n_params(chat) / n_params(draft):.1f}",
        "chat_mb": f"{folder_bytes(out / 'chat') / 1e6:.1f}",
        "draft_mb": f"{folder_bytes(out / 'draft') / 1e6:.1f}",
        "chat_minutes": f"{runs['chat']['train_minutes']:.0f}",
        "draft_minutes": f"{runs['draft']['train_minutes']:.0f}",
        "threads": runs["chat"]["threads"],
        "cpu": platform.machine(),
        "torch": runs["chat"].get("torch", torch.__version__),
        "eval_n": eval_n,
        "eval_seed": EVAL_SEED,
        "eval_table": "\n".join(rows),
        "agreement": f"{agreement:.0%}",
        "tool_table": "\n".join(tool_rows),
        "thinking_table": "\n".join(thinking_rows),
        "thinking_n": len(questions),
        "thinking_seed": THINKING_EVAL_SEED,
        "off_no_block": f"{thought['off_no_block'][0]:.1%}",
        "thinking_stops": f"{thought['stops'][0]:.1%}",
        "phrasing_table": "\n".join(phrasing_rows),
        "tools_mix_pct": f"{CHAT_TOOLS['tool_mix'] * 100:.0f}",
        "drill_pct": f"{CHAT['drill_only'] * 100:.0f}",
        "drill_mix_pct": f"{CHAT['drill_mix'] * 100:.0f}",
        **{f"chat_{k}": v for k, v in CHAT.items()},
        **{f"draft_{k}": v for k, v in DRAFT.items()},
        **{f"arith_{k}": v for k, v in CHAT_ARITHMETIC.items()},
        **{f"tools_{k}": v for k, v in CHAT_TOOLS.items()},
        **{f"draft_tools_{k}": v for k, v in DRAFT_TOOLS.items()},
        **{f"thinking_{k}": v for k, v in CHAT_THINKING.items()},
        **{f"phrasing_{k}": v for k, v in CHAT_PHRASING.items()},
    }
    for name, cfg in (("chat", CHAT), ("draft", DRAFT)):
        config = json.loads((out / name / "config.json").read_text())
        if (config["hidden_size"], config["num_hidden_layers"]) != (cfg["hidden"], cfg["layers"]):
            raise ValueError(f"{out / name} was not trained with this script's recipe; rebuild it without --card-only")
    write_card(out, info)
    (out / "chat" / "README.md").chmod(0o644)
    print(json.dumps({k: v for k, v in info.items() if not k.endswith("_table")}, indent=1))
    print("\n".join(rows + tool_rows + thinking_rows + phrasing_rows))
    return figures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "chatkit" / "embedded",
        help="folder that receives chat/ and draft/ (default: chatkit/embedded)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads; the shipped weights were trained with 1 (bitwise reproducible with 1)",
    )
    parser.add_argument("--quick", action="store_true", help="a few steps only: checks the pipeline runs")
    parser.add_argument(
        "--card-only",
        action="store_true",
        help="skip training: evaluate the models already in --out and rewrite the card",
    )
    parser.add_argument("--eval-n", type=int, default=CARD_EVAL_CONVERSATIONS)
    parser.add_argument(
        "--from-stage",
        choices=["start", "tools", "thinking", "phrasing"],
        default="start",
        help="tools / thinking / phrasing: train from that stage on, from the models already in --out "
        "(what a full build has before that stage)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the stage --from-stage names from its last checkpoint (build/<stage>-stage.pt)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not args.card_only:
        chat_cfg, draft_cfg = dict(CHAT), dict(DRAFT)
        quick = dict(steps=5, warmup=2) if args.quick else {}
        if args.quick:
            chat_cfg.update(steps=20, warmup=5)
            draft_cfg.update(steps=20, warmup=5)
            args.eval_n = 10
        chat_dir, draft_dir = args.out / "chat", args.out / "draft"
        arch = {k: chat_cfg[k] for k in ("hidden", "layers", "heads", "ff")}
        draft_arch = {k: draft_cfg[k] for k in ("hidden", "layers", "heads", "ff")}
        if args.from_stage == "start":
            tokenizer = build_tokenizer(seed=SEED)
            stages = {"chat": [], "draft": []}
            for name, out, kwargs in (
                ("chat", chat_dir, dict(seed=SEED, **chat_cfg)),
                ("chat", chat_dir, dict(seed=SEED + 2, init_from=chat_dir, **arch, **dict(CHAT_ARITHMETIC, **quick))),
                ("draft", draft_dir, dict(seed=SEED + 1, **draft_cfg)),
            ):
                train(tokenizer, out, threads=args.threads, **kwargs)
                stages[name].append(json.loads((out / "training_run.json").read_text()))
        else:  # from a later stage, from the models already in --out
            tokenizer = build_tokenizer(seed=SEED)  # byte-identical to the one the earlier stages used
            stages = {}
            later = {"tools": ("tool_mix", "thinking_mix"), "thinking": ("thinking_mix",)}.get(args.from_stage, ())
            for name, out in (("chat", chat_dir), ("draft", draft_dir)):
                run = json.loads((out / "training_run.json").read_text())  # one stage, or a record of several
                stages[name] = [
                    stage
                    for stage in run.get("stages", [run])
                    if not any(stage.get(k) for k in later) and stage.get("stage") != "phrasing"
                ]
        (ROOT / "build").mkdir(exist_ok=True)  # the last stages' checkpoints
        if args.from_stage in ("start", "tools"):
            for name, run in _tools_stage(
                tokenizer, chat_dir, draft_dir, arch, draft_arch, args.threads, quick
            ).items():
                stages[name].append(run)
        last = [("phrasing", SEED + 6, CHAT_PHRASING)]
        if args.from_stage != "phrasing":
            last.insert(0, ("thinking", SEED + 5, CHAT_THINKING))
        for i, (stage, seed, recipe) in enumerate(last):
            train(
                tokenizer,
                chat_dir,
                seed=seed,
                threads=args.threads,
                init_from=chat_dir,
                checkpoint=ROOT / "build" / f"{stage}-stage.pt",
                resume=args.resume and i == 0,
                **arch,
                **dict(recipe, **quick),
            )
            stages["chat"].append(dict(json.loads((chat_dir / "training_run.json").read_text()), stage=stage))
        for name, out in (("chat", chat_dir), ("draft", draft_dir)):  # the draft has no thinking stage
            runs = stages[name]
            record = {
                "train_minutes": round(sum(r["train_minutes"] for r in runs), 1),
                "threads": args.threads,
                "stages": runs,
            }
            (out / "training_run.json").write_text(json.dumps(record, indent=2) + "\n")
    evaluate_and_write_card(args.out, args.threads, args.eval_n)
    print(f"wrote {args.out / 'chat'} and {args.out / 'draft'}")


def _tools_stage(tokenizer, chat_dir, draft_dir, arch, draft_arch, threads, quick):
    """The tools stage of both models, each from its own earlier weights; returns each one's run record."""
    for out, seed, shape, recipe in (
        (chat_dir, SEED + 3, arch, CHAT_TOOLS),
        (draft_dir, SEED + 4, draft_arch, DRAFT_TOOLS),
    ):
        train(tokenizer, out, seed=seed, threads=threads, init_from=out, **shape, **dict(recipe, **quick))
    return {
        name: json.loads((out / "training_run.json").read_text())
        for name, out in (("chat", chat_dir), ("draft", draft_dir))
    }


if __name__ == "__main__":
    main()
