"""A byte-level BPE tokenizer trained on the project's corpus, with a ChatML-style chat template.

Digits are split one per token by the pre-tokenizer (so "85" is "8", "5"), which makes small
arithmetic learnable. Special tokens: `<|begin_of_text|>` (bos), `<|im_start|>`, `<|im_end|>`
(end of turn = eos, so generation stops there) and `<|pad|>`.

Example:
    >>> tok = build_tokenizer(seed=0)                 # doctest: +SKIP
    >>> tok.apply_chat_template([{"role": "user", "content": "Hi!"}], add_generation_prompt=True, tokenize=False)
"""

from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from training import corpus

PAD, BOS, IM_START, IM_END = "<|pad|>", "<|begin_of_text|>", "<|im_start|>", "<|im_end|>"
SPECIALS = [PAD, BOS, IM_START, IM_END]
MAX_LENGTH = 512  # the models' max_position_embeddings

# ChatML-style: <|im_start|>role\ncontent<|im_end|>\n. No system message: none is added (the model
# answers in its default style). `continue_final_message` leaves the last message open. With `tools`,
# a system turn lists them, one line each; assistant tool calls are written Hermes / Qwen2.5 style,
# <tool_call>{"name": ..., "arguments": {...}}</tool_call>, and results are `tool` turns.
CHAT_TEMPLATE = (Path(__file__).parent / "chat_template.jinja").read_text()


def set_templates(tokenizer):
    """Give `tokenizer` the chat template (tools included); returns it.

    No `response_template` in the saved config: with one, transformers 5.15-5.23's text-generation
    pipeline returns messages without a role and keeps <|im_end|> in prefilled and `return_full_text=False`
    replies. chatkit.tools.EMBEDDED_RESPONSE_TEMPLATE is passed to `parse_response` instead.
    """
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def training_texts(seed=0, n_conversations=3000):
    """Text the BPE merges are learned from: rendered conversations plus arithmetic drill."""
    import random

    texts = []
    for conv in corpus.conversations(n_conversations, seed=seed):
        texts.append("\n".join(f"{m['role']}\n{m['content']}" for m in conv.messages))
    rng = random.Random(seed)
    texts += [corpus.arithmetic_drill(rng, 20) for _ in range(200)]
    return texts


def build_tokenizer(seed=0, vocab_size=1024):
    """Train the BPE on the corpus drawn with `seed`; the same seed gives byte-identical files."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIALS,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(training_texts(seed), trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=IM_END, pad_token=PAD, model_max_length=MAX_LENGTH
    )
    return set_templates(tokenizer)
