"""A byte-level BPE tokenizer trained on the project's corpus, with a ChatML-style chat template.

Digits are split one per token by the pre-tokenizer (so "85" is "8", "5"), which makes small
arithmetic learnable. Special tokens: `<|begin_of_text|>` (bos), `<|im_start|>`, `<|im_end|>`
(end of turn = eos, so generation stops there) and `<|pad|>`.

Example:
    >>> tok = build_tokenizer(seed=0)                 # doctest: +SKIP
    >>> tok.apply_chat_template([{"role": "user", "content": "Hi!"}], add_generation_prompt=True, tokenize=False)
"""

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from training import corpus

PAD, BOS, IM_START, IM_END = "<|pad|>", "<|begin_of_text|>", "<|im_start|>", "<|im_end|>"
SPECIALS = [PAD, BOS, IM_START, IM_END]
MAX_LENGTH = 512  # the models' max_position_embeddings

# ChatML-style: <|im_start|>role\ncontent<|im_end|>\n. No system message: none is added (the model
# answers in its default style). `continue_final_message` leaves the last message open.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('Roles must be system, user or assistant; got ' + message['role']) }}"
    "{% endif %}"
    "{% if message['role'] == 'system' and not loop.first %}"
    "{{ raise_exception('A system message must come first in the chat.') }}"
    "{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] }}"
    "{% if not (loop.last and continue_final_message is defined and continue_final_message) %}"
    "{{ '<|im_end|>\\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


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
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(training_texts(seed), trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=IM_END, pad_token=PAD,
                                        model_max_length=MAX_LENGTH)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer
