"""Train a small Llama-architecture chat model on the generated corpus, on CPU, deterministically.

Each optimiser step draws its own batch from a random generator seeded by (seed, step), so a run
is resumable (`--resume` continues from the last checkpoint with the same batches) and the same
seed, thread count and CPU give the same weights. Rows are packed conversations rendered with the
chat template; the loss covers the assistant's tokens only (its reply and the end-of-turn token).
A curriculum starts with dense bare sums and differences ("37 + 48 = 85", loss on the answers)
and then mixes them into the chat data.

Usage:
    python -m training.train --out DIR [--steps N] [--hidden 256 --layers 4 ...] [--threads 2]
"""

import argparse
import json
import math
import os
import random
import re
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm
from transformers import LlamaConfig, LlamaForCausalLM

from training import corpus, phrasing, thinking
from training.evaluate import EVAL_SEED, evaluate, format_figures, render_chat

TRAIN_SEED_OFFSET = 7_919  # batches come from seeds far from the evaluation's EVAL_SEED
MAX_TOKENS = 512  # the models' context (max_position_embeddings)


def encode_conversation(tokenizer, conv):
    """Token ids of the conversation rendered with the chat template, and the loss mask (assistant)."""
    if conv.tools:
        return encode_tool_conversation(tokenizer, conv)
    messages = conv.messages
    text, spans = "<|begin_of_text|>", []
    for m in messages:
        head = f"<|im_start|>{m['role']}\n"
        start = len(text) + len(head)
        text += head + m["content"] + "<|im_end|>\n"
        if m["role"] == "assistant":
            spans.append((start, len(text) - 1))  # the reply and <|im_end|>, not the newline after it
    assert text == render_chat(messages)
    return _encode_with_spans(tokenizer, text, spans)


def _assistant_spans(text, head="<|im_start|>assistant\n"):
    """(start, end) of every assistant turn in `text`: after its head, to the end of its <|im_end|>."""
    return [
        (m.end(), text.index("<|im_end|>", m.end()) + len("<|im_end|>")) for m in re.finditer(re.escape(head), text)
    ]


def encode_tool_conversation(tokenizer, conv):
    """A conversation with tools, rendered by the tokenizer's template; the loss covers every assistant
    turn (tool calls and answers, with their <|im_end|>), not the tool list or the tools' results."""
    text = tokenizer.apply_chat_template(conv.messages, tools=conv.tool_functions, tokenize=False)
    return _encode_with_spans(tokenizer, text, _assistant_spans(text))


def encode_thinking_conversation(tokenizer, conv):
    """A `training.thinking` conversation rendered with its thinking switch. Thinking off: the loss covers
    every reply. On: only the last one (its thought, `</think>`, the answer), after the `<think>` the prompt
    writes; earlier replies are rendered as the template leaves them, without their thought."""
    text = tokenizer.apply_chat_template(conv.messages, tokenize=False, enable_thinking=conv.enable_thinking)
    spans = _assistant_spans(text)
    if conv.enable_thinking:
        spans = _assistant_spans(text, "<|im_start|>assistant\n<think>\n")[-1:]
    return _encode_with_spans(tokenizer, text, spans)


def rephrased(conv, rng, share):
    """`conv` with about `share` of its questions asked another way, and its tools maybe described otherwise."""
    for turn in conv.turns:
        if rng.random() < share:
            turn.user = phrasing.rephrase(turn, rng)
    if conv.tools and rng.random() < share:
        conv.tool_descriptions = phrasing.tool_descriptions(rng, conv.tools)
    return conv


def encode_drill(tokenizer, text):
    """Token ids of bare arithmetic lines; the loss covers the working and answer after the colon."""
    spans, pos = [], 0
    for line in text.splitlines(keepends=True):
        colon = line.index(":")
        spans.append((pos + colon + 1, pos + len(line)))
        pos += len(line)
    ids, mask = _encode_with_spans(tokenizer, text, spans)
    return [tokenizer.bos_token_id] + ids, [0] + mask


def _encode_with_spans(tokenizer, text, spans):
    enc = tokenizer.backend_tokenizer.encode(text, add_special_tokens=False)
    mask = []
    for start, end in enc.offsets:
        mask.append(int(any(s <= start and end <= e for s, e in spans) and end > start))
    return enc.ids, mask


def drill_fraction(step, steps, drill_only, drill_mix=0.25):
    """Share of documents that are bare arithmetic: all of them first, then a steady `drill_mix`."""
    return 1.0 if step < drill_only * steps else drill_mix


def make_batch(
    tokenizer,
    seed,
    step,
    steps,
    batch,
    seq_len,
    drill_only,
    drill_mix=0.25,
    arithmetic_weight=None,
    tool_mix=0.0,
    thinking_mix=0.0,
    rephrase=0.0,
):
    """Rows of packed documents for `step`: the same arguments always give the same batch.

    `tool_mix`: share of the chat documents that are conversations with tools (those longer than the
    models' 512 tokens are drawn again). `thinking_mix`: share of the rest that are `training.thinking`
    conversations. `rephrase`: share of questions asked another way (`training.phrasing`).
    """
    rng = random.Random(seed * 1_000_003 + step + TRAIN_SEED_OFFSET)
    p_drill = drill_fraction(step, steps, drill_only, drill_mix)
    inputs, labels = [], []
    for _ in range(batch):
        ids, mask = [], []
        while len(ids) < seq_len + 1:
            if rng.random() < p_drill:
                i, m = encode_drill(tokenizer, corpus.arithmetic_drill(rng, rng.randint(2, 8)))
            elif tool_mix and rng.random() < tool_mix:
                conv = corpus.tool_conversation(rng=rng)
                i, m = encode_tool_conversation(tokenizer, rephrased(conv, rng, rephrase) if rephrase else conv)
                if len(i) > MAX_TOKENS:
                    continue
            elif thinking_mix and rng.random() < thinking_mix:
                conv = thinking.thinking_conversation(rng=rng)
                if rephrase:
                    rephrased(conv.conversation, rng, rephrase)
                i, m = encode_thinking_conversation(tokenizer, conv)
            else:
                conv = corpus.conversation(rng=rng, arithmetic_weight=arithmetic_weight)
                i, m = encode_conversation(tokenizer, rephrased(conv, rng, rephrase) if rephrase else conv)
            ids += i
            mask += m
        ids, mask = ids[:seq_len], mask[:seq_len]
        inputs.append(ids)
        labels.append([t if keep else -100 for t, keep in zip(ids, mask)])
    return torch.tensor(inputs), torch.tensor(labels)


def model_config(tokenizer, hidden, layers, heads, ff):
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=ff,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        rms_norm_eps=1e-5,
        initializer_range=0.02,
        rope_theta=10000.0,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def learning_rate(step, steps, peak, warmup):
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def save_model(model, tokenizer, out):
    """fp32 safetensors + tokenizer + generation config, world-readable."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    gen = model.generation_config
    gen.bos_token_id, gen.eos_token_id, gen.pad_token_id = (
        tokenizer.bos_token_id,
        tokenizer.eos_token_id,
        tokenizer.pad_token_id,
    )
    gen.max_new_tokens = 128
    model.to(torch.float32).save_pretrained(out)
    tokenizer.save_pretrained(out)
    for path in out.iterdir():
        if path.is_file():
            os.chmod(path, 0o644)


def train(
    tokenizer,
    out,
    steps=6000,
    hidden=256,
    layers=4,
    heads=8,
    ff=688,
    batch=4,
    seq_len=256,
    lr=2e-3,
    warmup=200,
    drill_only=0.08,
    drill_mix=0.25,
    arithmetic_weight=None,
    tool_mix=0.0,
    thinking_mix=0.0,
    rephrase=0.0,
    init_from=None,
    seed=0,
    threads=1,
    bf16=True,
    eval_every=0,
    eval_n=40,
    checkpoint=None,
    resume=False,
    checkpoint_every=250,
    log=None,
    progress=True,
):
    """Train a model and save it to `out`; returns the trained model.

    `init_from`: a model folder whose weights the run starts from (a second, arithmetic-heavy stage).
    `arithmetic_weight`: share of arithmetic exchanges in the conversations (default: the corpus's).
    `tool_mix`: share of conversations with tools (a stage that teaches tool calls).
    `checkpoint`: file for resumable state (model, optimiser, step); with `resume=True` an existing
    one is continued. `eval_every` > 0 runs a quick held-out evaluation on `eval_n` conversations.
    """
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(model_config(tokenizer, hidden, layers, heads, ff))
    if init_from:  # a second stage continues from an earlier stage's saved weights
        from safetensors.torch import load_file

        weights = load_file(Path(init_from) / "model.safetensors")
        weights.setdefault("lm_head.weight", weights["model.embed_tokens.weight"])
        model.load_state_dict(weights)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optim = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}],
        lr=lr,
        betas=(0.9, 0.95),
        eps=1e-8,
    )
    start = 0
    if checkpoint and resume and Path(checkpoint).exists():
        state = torch.load(checkpoint, weights_only=True)
        model.load_state_dict(state["model"])
        optim.load_state_dict(state["optim"])
        start = int(state["step"])
    n_params = sum(p.numel() for p in model.parameters())
    say = (lambda s: print(s, file=log, flush=True) if log else None) if not progress else tqdm.write
    say(f"model: {n_params:,} parameters; steps {start}..{steps}, batch {batch}x{seq_len} tokens, {threads} threads")
    eval_convs = corpus.conversations(eval_n, seed=EVAL_SEED + 1) if eval_every else None
    began = time.perf_counter()
    model.train()
    bar = tqdm(range(start, steps), initial=start, total=steps, desc="training", disable=not progress, mininterval=2.0)
    for step in bar:
        for group in optim.param_groups:
            group["lr"] = learning_rate(step, steps, lr, warmup)
        inputs, labels = make_batch(
            tokenizer,
            seed,
            step,
            steps,
            batch,
            seq_len,
            drill_only,
            drill_mix,
            arithmetic_weight,
            tool_mix,
            thinking_mix,
            rephrase,
        )
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=inputs, labels=labels).loss
        optim.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
            if log and progress:
                print(f"step {step} loss {loss.item():.4f} {time.perf_counter() - began:.0f}s", file=log, flush=True)
        done = step + 1
        if checkpoint and (done % checkpoint_every == 0 or done == steps):
            tmp = Path(str(checkpoint) + ".tmp")
            torch.save({"model": model.state_dict(), "optim": optim.state_dict(), "step": done}, tmp)
            os.replace(tmp, checkpoint)
        if eval_every and (done % eval_every == 0 or done == steps):
            figures = evaluate(model, tokenizer, eval_convs, max_new_tokens=64)
            line = f"step {done} eval: {format_figures(figures)} ({time.perf_counter() - began:.0f}s)"
            say(line)
            if log and progress:
                print(line, file=log, flush=True)
            model.train()
    model.eval()
    save_model(model, tokenizer, out)
    run = {
        "steps": steps,
        "threads": threads,
        "seed": seed,
        **({"tool_mix": tool_mix} if tool_mix else {}),
        **({"thinking_mix": thinking_mix, "rephrase": rephrase} if thinking_mix or rephrase else {}),
        "train_minutes": round((time.perf_counter() - began) / 60, 1),
        "resumed_at_step": start,
        "torch": torch.__version__,
    }
    (Path(out) / "training_run.json").write_text(json.dumps(run, indent=2) + "\n")
    return model


def main(argv=None):
    from training.tokenizer import build_tokenizer

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="folder for the trained model")
    p.add_argument("--tokenizer", type=Path, default=None, help="tokenizer folder (default: build one with --seed)")
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--ff", type=int, default=688)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--drill-only", type=float, default=0.08, help="fraction of steps with arithmetic drill only")
    p.add_argument("--drill-mix", type=float, default=0.25, help="share of arithmetic drill documents afterwards")
    p.add_argument("--arithmetic-weight", type=float, default=None, help="weight of arithmetic exchanges")
    p.add_argument("--tool-mix", type=float, default=0.0, help="share of conversations with tools")
    p.add_argument("--init-from", type=Path, default=None, help="model folder to start from (a second stage)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 holds up best on a busy machine)")
    p.add_argument("--no-bf16", action="store_true", help="train in fp32 instead of bf16 autocast")
    p.add_argument("--eval-every", type=int, default=0)
    p.add_argument("--eval-n", type=int, default=40)
    p.add_argument("--checkpoint", type=Path, default=None, help="resumable state file")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--log", type=Path, default=None, help="also append progress lines to this file")
    args = p.parse_args(argv)
    if args.tokenizer:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    else:
        tokenizer = build_tokenizer(seed=args.seed)
    log = open(args.log, "a") if args.log else None
    start = time.perf_counter()
    train(
        tokenizer,
        args.out,
        steps=args.steps,
        hidden=args.hidden,
        layers=args.layers,
        heads=args.heads,
        ff=args.ff,
        batch=args.batch,
        seq_len=args.seq_len,
        lr=args.lr,
        warmup=args.warmup,
        drill_only=args.drill_only,
        drill_mix=args.drill_mix,
        arithmetic_weight=args.arithmetic_weight,
        tool_mix=args.tool_mix,
        init_from=args.init_from,
        seed=args.seed,
        threads=args.threads,
        bf16=not args.no_bf16,
        eval_every=args.eval_every,
        eval_n=args.eval_n,
        checkpoint=args.checkpoint,
        resume=args.resume,
        log=log,
    )
    print(f"trained in {(time.perf_counter() - start) / 60:.1f} min; wrote {args.out}")


if __name__ == "__main__":
    main()
