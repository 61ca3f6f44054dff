"""Chat with a causal language model on the simulator: a Hugging Face directory of GPT-2,
Llama, Mistral, Qwen2, Qwen3, Phi-3 or Gemma (with tokenizer.json, and a chat template for chat), or
without one a tiny random Llama built here to show the mechanics (its words are "w0".."w99").

    python examples/chat.py [MODEL_DIR] [--prompt "..."] [--max-new-tokens 32]

Checks itself against transformers in float32 when torch and transformers are installed."""
import argparse
import json
import pathlib
import tempfile

import numpy as np

import aneforge as af

TEMPLATE = ("{{ bos_token }} {% for m in messages %}{% if m['role'] == 'user' %}w1{% else %}w2{% endif %} "
            "{{ m['content'] }} w4 {% endfor %}{% if add_generation_prompt %}w2{% endif %}")


def tiny_model(directory: pathlib.Path):
    """A 2-layer Llama with random weights, a word-level tokenizer and a chat template."""
    import torch
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=100, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                   num_key_value_heads=2, intermediate_size=128, max_position_embeddings=256,
                                   bos_token_id=98, eos_token_id=99)
    model = transformers.LlamaForCausalLM(cfg).eval()
    model.save_pretrained(directory)
    tok = Tokenizer(models.WordLevel({f"w{i}": i for i in range(100)}, unk_token="w0"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")
    tok.save(str(directory / "tokenizer.json"))
    (directory / "tokenizer_config.json").write_text(json.dumps(
        {"bos_token": "w98", "eos_token": "w99", "chat_template": TEMPLATE}))
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?")
    ap.add_argument("--prompt", default="w5 w6 w7")
    ap.add_argument("--max-new-tokens", type=int, default=24)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(args.model) if args.model else pathlib.Path(tmp) / "tiny-llama"
        ref = None if args.model else tiny_model(path)
        lm = af.load(path, max_context=256)
        print(lm)
        messages = [{"role": "user", "content": args.prompt}]
        ids = lm.chat_ids(messages)
        print("prompt ids:", ids)
        print("reply:", lm.chat(messages, max_new_tokens=args.max_new_tokens))
        if ref is None:
            return
        import torch
        with torch.no_grad():
            want = ref(torch.tensor([ids])).logits[0, -1].numpy()
        cos = af.testing.cosine(lm.next_logits(ids), want)
        same = (lm.generate(ids, args.max_new_tokens) == ref.generate(
            torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long), do_sample=False,
            max_new_tokens=args.max_new_tokens, pad_token_id=0).numpy()).all()
        print(f"next-token logits cosine vs transformers float32: {cos:.6f}; greedy tokens equal: {bool(same)}")
        assert cos >= 0.999 and same


if __name__ == "__main__":
    np.set_printoptions(linewidth=120)
    main()
