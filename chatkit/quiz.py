"""Quizzes: a few multiple-choice questions on each notebook's ideas, with the reason after each answer.

    chatkit.quiz.show(3)             # a cell's last line: the quiz as widgets (as text without ipywidgets)
    chatkit.quiz.answer(3, 1, "b")   # without widgets: prints "Right." or "Not quite." and the reason

Each reason names the notebook's section that shows the idea. Offline; ipywidgets and IPython are imported
only to display a quiz. Its text (repr, and the `text/plain` that GitHub shows and nbval compares) has no ids.
"""

import html
import re
import textwrap
from dataclasses import dataclass
from functools import cached_property

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"  # the MIME type of a widget's view
LETTERS = "abcdefghij"


@dataclass(frozen=True)
class Question:
    """One question: `choices[answer]` is right; `reason` says why, and in which section it is shown."""

    text: str
    choices: tuple
    answer: int
    reason: str


Q = Question  # short, for the table below

QUIZZES = {
    1: (Q("Unless told otherwise, what does the text-generation pipeline do when you call it with a chat?",
          ("Greedy decoding: the same chat always gets the same reply",
           "It samples (do_sample=True, temperature=0.7): the same chat can get another reply each time",
           "Beam search with four beams"), 1, "§1.3: the pipeline samples unless you or the model's "
          "generation_config.json say otherwise; `do_sample=False` asks for greedy decoding."),
        Q("How do you continue a conversation after the pipeline's reply?",
          ("Append a user message to `generated_text` and call the pipeline again with the whole list",
           "Call the pipeline with the new message alone: the model remembers the earlier turns",
           "Pass `continue_conversation=True` to the pipeline"), 0, "§1.5: the model has no memory of its own "
          "between calls; it sees the whole history every time."),
        Q('What does `dtype="auto"` (transformers 5\'s default) load?',
          ("Always float32, the safe default", "Always bfloat16, to halve the memory",
           "The smallest dtype that fits the free memory", "The dtype the checkpoint was saved in"), 3,
          "§1.2: it keeps the dtype recorded in the checkpoint's config.json, as the cell checks."),
        Q("What is the safe way to give the libraries your token for a gated model?",
          ("Paste it into a notebook cell", "Call `huggingface_hub.login()` at the top of every notebook",
           "Set the HF_TOKEN environment variable, or a Colab secret named HF_TOKEN"), 2,
          "§1.7: pasted tokens end up in saved files and screenshots, and `login()` waits for typed input and "
          "hangs headless runs; `chatkit.hf_token()` reads only those two places, and never prompts.")),
    2: (Q("About how much memory do the weights of an 8B-parameter model take in bf16?",
          ("About 8 GB", "About 16 GB", "About 32 GB"), 1, "§2.3: bf16 stores each parameter in 2 bytes (fp32 "
          "in 4), so 8B parameters take about 16 GB, before the KV cache and overhead."),
        Q('What does the "4k" in microsoft/Phi-3-mini-4k-instruct tell you?',
          ("Its context length: the name carries no parameter count", "4 thousand million parameters",
           "That it is quantized to 4 bits"), 0, "§2.1: some numbers in names are not sizes (a version, a "
          "context length, a date), and `parse_model_size` finds no size in this name."),
        Q("Mixtral-8x7B: how many parameters does it have, and how many does each token use?",
          ("56B (8 × 7B), all of them for every token", "46.7B, but each token reads only one expert's 7B",
           "46.7B in all (only the MLPs are copied 8 times), 12.9B per token (2 of 8 experts)"), 2,
          "§2.4: attention, embeddings and norms exist once, and every expert must be in memory: the memory of "
          "a 47B model, the per-token work of a 13B one."),
        Q("Why does Mixtral barely shrink when bitsandbytes loads it in 4-bit?",
          ("Its experts are fused 3-D tensors, and bitsandbytes quantizes only `nn.Linear` layers",
           "bitsandbytes quantizes only the first and last layers", "Its KV cache is most of its memory"), 0,
          "§2.5: transformers 5 stores each layer's experts as one fused tensor, so they stay in bf16; formats "
          "that quantize experts too (such as GGUF) do shrink MoE models.")),
    3: (Q("How do you ask `generate` for greedy decoding?",
          ("`temperature=0.`", "`do_sample=False`", "`top_p=0`"), 1, "§3.2: temperature matters only when "
          "sampling: a greedy `generate` ignores `temperature=0.`, and with sampling on it raises."),
        Q("Where does a doubled BOS token come from?",
          ("`add_generation_prompt=True`", "`apply_chat_template(..., tokenize=True)`",
           "Tokenizing the rendered template's text with `add_special_tokens` left on, the default"), 2,
          "§3.3: the template already writes the BOS and Llama-style tokenizers add one more; tokenize with "
          "`add_special_tokens=False`, or use `tokenize=True`, which never adds it twice (§3.4)."),
        Q("What happens when a chat is formatted with another family's chat template?",
          ("The model does worse: it only understands the format it was trained on",
           "Nothing: templates differ only in whitespace", "The model always raises an error"), 0,
          "§3.8 measures it: the model does best in its own format, far worse in others'; use the tokenizer's."),
        Q("Batching chats of different lengths for a decoder-only model: which side do you pad?",
          ("The right, so every prompt starts at position 0",
           "The left, so every prompt ends where its reply begins",
           "Either: the attention mask makes it irrelevant"), 1, "§3.11: with left padding the new tokens "
          "follow each prompt directly, and the attention mask tells the model to ignore the padding.")),
    4: (Q("In transformers 5, `from_pretrained(name)` with no dtype, on a checkpoint saved in bf16, loads:",
          ("float32: weights are upcast unless you pass a dtype", "float16, the GPU default",
           "bfloat16: the checkpoint's own dtype"), 2, '§4.2: the default is `dtype="auto"`; loading in '
          "float32 unless told otherwise was transformers 4."),
        Q("Why can a model trained in bf16 produce inf or nan when run in fp16?",
          ("fp16 overflows above 65,504, while bf16 keeps float32's range",
           "fp16 has fewer digits of precision than bf16", "fp16 takes 1 byte per parameter"), 0,
          "§4.1: `torch.finfo` shows it: bf16 keeps float32's range with fewer digits; fp16's is far smaller."),
        Q("Why does a 4-bit bitsandbytes model take more than 0.5 bytes per parameter?",
          ("bitsandbytes stores each 4-bit weight in a full byte",
           "Embeddings, `lm_head` and norms stay in 16-bit, and the scales add to the weights",
           "`get_memory_footprint()` counts the KV cache too"), 1, "§4.5 measures it (within 2% of chatkit's "
          "estimate): only the linear layers inside the blocks are quantized, each with its scales."),
        Q("How does the KV cache grow with the context?",
          ("Quadratically, like attention's work", "It does not: its size depends on the model alone",
           "Linearly: 2 × layers × kv_heads × head_dim × bytes × tokens × batch"), 2,
          "§4.8 measures it next to the formula: the keys and values of every earlier token, in every layer; "
          "Llama-3-8B keeps 128 KiB per token in bf16.")),
    5: (Q("At batch 1, for a model big enough to be bandwidth-bound, tokens/s is about:",
          ("Memory bandwidth ÷ the bytes of weights read per token",
           "The processor's FLOP/s ÷ the number of parameters", "The number of cores × the clock rate"), 0,
          "§5.1: each token reads every active weight once for two operations, so the processor waits on "
          "memory: time per token ≈ bytes read ÷ bandwidth."),
        Q("Why do small models decode more slowly than that rule predicts?",
          ("Their weights do not fit in the CPU caches",
           "A fixed cost per token (Python, `generate`'s bookkeeping, a kernel call per operation) dominates",
           "The rule holds only in bf16"), 1, "§5.3: a thin twin of each model, which reads almost nothing, "
          "measures that fixed cost; small models are overhead-bound, big ones come close to the prediction."),
        Q("With greedy decoding, what does assisted generation (a draft model) output?",
          ("The draft model's output, checked for errors", "Nearly the target's output, slightly worse",
           "Exactly the target model's greedy output"), 2, "§5.5: the target checks the draft's guesses in one "
          "pass and keeps the prefix it agrees with, plus one of its own: faster when the draft guesses well."),
        Q("Why do prompt tokens go through many times faster than the reply's tokens?",
          ("Prompt tokens skip the attention layers",
           "Prefill is one pass where all prompt tokens meet each weight together: limited by arithmetic, not "
           "memory", "The prompt is read in a lower precision"), 1, "§5.8: only the reply is generated token by "
          "token (decode); the time to first token grows with the prompt, each later token costs the same.")),
    6: (Q("What is `chatbox.history`?",
          ("The HTML shown in the window, read-only", "The token ids of every message so far",
           "The conversation as a list of {role, content} dicts, readable and settable from code"), 2,
          "§6.2: it is the list the pipeline of notebook 01 takes; setting it replaces the conversation in the "
          "window, a leading system message going into the System field."),
        Q("You type a message and then click elsewhere in the notebook. What happens?",
          ("Nothing is sent: only Enter and Send send, and the text stays in the box",
           "It is sent when the box loses focus", "It is deleted"), 0, "§6.4: the box sends its value when it "
          "loses focus too, but only its submit event, sent on Enter, sends the message."),
        Q("When streaming with a `TextIteratorStreamer`, why does `generate` run in a background thread?",
          ("`generate` is faster in a thread",
           "`generate` returns only when the reply is complete, so another thread must read the streamer "
           "meanwhile", "Tokenizers cannot be used from the main thread"), 1,
          "§6.4: `generate` fills the streamer from its thread while yours reads the chunks as they come."),
        Q("What does the widget's Stop button do?",
          ("Interrupts the kernel and discards the reply", "Clears the conversation",
           "Sets a `threading.Event` checked after every token; the text written so far is kept"), 2,
          "§6.1 and §6.4: `stream_reply(..., stop_event=event)` checks it after every token (a "
          "`StoppingCriteria`) and ends `generate` there; Reset is what clears the conversation.")),
    7: (Q("What does transformers read to turn a Python function into a tool's JSON schema?",
          ("Its type hints and its Google-style docstring", "Its source code", "Nothing: you write the JSON"), 0,
          "§7.1: `get_json_schema` reads both: the type hints and the docstring's description of each argument."),
        Q("The model writes a tool call. Who runs the function?",
          ("The model, inside `generate`", "The chat template",
           "Your program: it looks the function up by name and passes the parsed arguments"), 2,
          "§7.4 and §7.5: the result goes back as a `tool` message; `run_tools` calls only the functions it was "
          "given, with arguments parsed as JSON, never run as code."),
        Q("When does a calculator tool make a model right more often?",
          ("Always, for any chat model", "When the tool is in the prompt and the model was trained to call it",
           "Only at temperature 0"), 1, "§7.7 measures it on the embedded model, which never learned to "
          "multiply; §7.9 notes that SmolLM2's templates write no tools at all."),
        Q("Which makes valid JSON certain, not just likely?",
          ("Prefilling the reply with the start of the JSON", "Asking again until the reply parses",
           "Greedy decoding", "Constrained decoding: tokens that would break the schema get probability zero"), 3,
          "§7.8: prefill and retry make valid JSON likely; constrained decoding (a `logits_processor`, as in "
          "Outlines or XGrammar) makes it certain.")),
    8: (Q("Which clients can talk to a `transformers serve` server?",
          ("Any OpenAI-compatible client (openai, huggingface_hub, chatkit's ServerModel), with the same "
           "messages", "Only `transformers chat`", "Only a web browser"), 0,
          "§8.2 and §8.4: it answers `/v1/chat/completions`, the endpoint OpenAI's API made standard; with "
          "greedy settings the reply is the pipeline's."),
        Q("Why does continuous batching help a room full of learners?",
          ("It runs one copy of the model per learner",
           "It decodes the requests in flight together, and a step for many costs little more than one",
           "It answers the short questions first"), 1, "§8.3 measures it: the room waits less and gets far more "
          "tokens per second; without it the requests compete for the same cores, and waits grow with the room."),
        Q("Served with continuous batching in bfloat16, a greedy reply differs from the pipeline's. Why?",
          ("The server samples even at temperature 0",
           "A batch's matrix products have other shapes and round differently, and a near-tie between two "
           "tokens can flip", "The server runs another model"), 1,
          "§8.3: one by one the replies are the pipeline's; batched in float32, whose rounding is 2**16 times "
          "finer, they are the pipeline's again."),
        Q("How do you open a `transformers serve` server to a room safely?",
          ("Bind it to 0.0.0.0: the traffic is encrypted", "Set HF_TOKEN on the server",
           "Keep it on loopback and reach it through an SSH tunnel, or put a proxy that checks a key in front"), 2,
          "§8.5: `transformers serve` has no key option (in 5.23; vLLM has `--api-key`), and the traffic is "
          "plain HTTP: use a network you trust either way."),
        Q("vLLM: a model bigger than one GPU, in one machine, needs which flag?",
          ("`--data-parallel-size`", "`--tensor-parallel-size`: each layer split over GPUs on a fast link",
           "`--pipeline-parallel-size` alone"), 1, "§8.6: tensor parallel splits each layer within a machine; "
          "pipeline parallel spans machines, and data parallel runs copies for more requests.")),
}


def _quiz(notebook):
    if isinstance(notebook, bool) or not isinstance(notebook, int) or notebook not in QUIZZES:
        raise ValueError(f"no quiz for notebook {notebook!r}: there are quizzes for notebooks "
                         f"{min(QUIZZES)}–{max(QUIZZES)}")
    return QUIZZES[notebook]


def _choice_index(question, choice, where):
    """The index of `choice` (a letter, an index from 0, or a choice's exact text), else a ValueError."""
    n = len(question.choices)
    if isinstance(choice, int) and not isinstance(choice, bool) and 0 <= choice < n:
        return choice
    if isinstance(choice, str):
        letter = choice.strip().lower().rstrip(")")
        if len(letter) == 1 and letter in LETTERS[:n]:
            return LETTERS.index(letter)
        if choice in question.choices:
            return question.choices.index(choice)
    raise ValueError(f"{where} has choices a–{LETTERS[n - 1]} (or 0–{n - 1}, or a choice's exact text); "
                     f"got {choice!r}")


def _html(text):
    """Escaped (the texts hold things like `<|im_end|>`), with `code` spans as <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def quiz_text(notebook):
    """The quiz as plain text: numbered questions, lettered choices, and how to answer without widgets."""
    questions = _quiz(notebook)
    lines = [f"Quiz on notebook {notebook:02d}: {len(questions)} questions", ""]
    wrap = dict(width=100, break_long_words=False, break_on_hyphens=False)
    for number, question in enumerate(questions, 1):
        lines += textwrap.wrap(f"{number}. {question.text}", subsequent_indent="   ", **wrap)
        for letter, choice in zip(LETTERS, question.choices):
            lines += textwrap.wrap(f"{letter}) {choice}", initial_indent="   ", subsequent_indent="      ", **wrap)
        lines.append("")
    lines.append(f'Without widgets: chatkit.quiz.answer({notebook}, 1, "b") checks answer b) to question 1.')
    return "\n".join(lines)


class _QuestionView:
    """One question's widgets: the question, its choices (none chosen), a Check button and the feedback."""

    def __init__(self, widgets, number, question):
        self.question = question
        self.prompt = widgets.HTML(f"<b>{number}.</b> {_html(question.text)}")
        options = [(f"{letter}) {choice}", i) for i, (letter, choice) in enumerate(zip(LETTERS, question.choices))]
        # value=None: nothing chosen (ipywidgets 7 and 8 would otherwise select the first choice)
        self.choices = widgets.RadioButtons(options=options, value=None, layout=widgets.Layout(width="auto"))
        self.check = widgets.Button(description="Check")
        self.feedback = widgets.HTML()
        self.check.on_click(self._check)
        self.box = widgets.VBox([self.prompt, self.choices, self.check, self.feedback])

    def _check(self, _button):
        if self.choices.value is None:
            self.feedback.value = "<i>Choose an answer first.</i>"
        else:
            verdict = "Right." if self.choices.value == self.question.answer else "Not quite."
            self.feedback.value = f"<b>{verdict}</b> {_html(self.question.reason)}"


class Quiz:
    """A notebook's quiz: widgets when displayed in a notebook, text everywhere else (repr, str, GitHub)."""

    def __init__(self, notebook):
        self.notebook = notebook
        self.questions = _quiz(notebook)

    @cached_property
    def ui(self):
        """The quiz's widgets, built on first use (ipywidgets is imported only then); `views` holds their parts."""
        import ipywidgets as widgets

        self.views = [_QuestionView(widgets, n, q) for n, q in enumerate(self.questions, 1)]
        return widgets.VBox([view.box for view in self.views])

    def __repr__(self):
        return quiz_text(self.notebook)

    __str__ = __repr__

    def _ipython_display_(self):
        """Show the widgets, with the quiz's text as `text/plain` (the view's model id is random)."""
        from IPython.display import display

        try:
            ui = self.ui
        except ImportError:  # no ipywidgets: the text alone, which says how to answer with `answer()`
            display({"text/plain": repr(self)}, raw=True)
            return
        bundle = getattr(ui, "_repr_mimebundle_", None)
        if bundle is not None:  # ipywidgets 8
            data = bundle()
        else:  # ipywidgets 7: the bundle its own _ipython_display_ sends, built the same way
            data = {WIDGET_VIEW: {"version_major": 2, "version_minor": 0, "model_id": ui.model_id}}
        data["text/plain"] = repr(self)
        display(data, raw=True)
        if bundle is None:
            ui._handle_displayed()  # ipywidgets 7 runs its on_displayed callbacks here


def show(notebook):
    """The quiz on notebook `notebook` (1–8): make it a cell's last line to show it."""
    return Quiz(notebook)


def answer(notebook, question, choice):
    """Check an answer without widgets: print "Right." or "Not quite." and the reason; True if right.

    `question` counts from 1; `choice` is a letter ("b"), an index from 0, or the exact text of a choice.
    """
    questions = _quiz(notebook)
    if isinstance(question, bool) or not isinstance(question, int) or not 1 <= question <= len(questions):
        raise ValueError(f"notebook {notebook}'s quiz has questions 1–{len(questions)}; got {question!r}")
    asked = questions[question - 1]
    right = _choice_index(asked, choice, f"question {question} of notebook {notebook}") == asked.answer
    print("Right." if right else "Not quite.", asked.reason)
    return right
