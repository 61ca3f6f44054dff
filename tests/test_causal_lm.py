"""Causal language models through af.load: directories saved by transformers from random
configurations (offline) of each family, generating against transformers' own generate."""
import warnings

import numpy as np
import pytest

import aneforge as af
from test_engine import double_libs, engine  # noqa: F401 - the engine doubles' fixtures

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

SMALL = dict(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
             intermediate_size=64, max_position_embeddings=128, bos_token_id=98, eos_token_id=99)


def _model(family):
    t = transformers
    if family == "gpt2":
        return t.GPT2LMHeadModel(t.GPT2Config(vocab_size=100, n_embd=32, n_layer=2, n_head=4, n_positions=128,
                                              bos_token_id=99, eos_token_id=99))
    if family == "llama":
        return t.LlamaForCausalLM(t.LlamaConfig(**SMALL))
    if family == "qwen2":  # biases on q, k and v
        return t.Qwen2ForCausalLM(t.Qwen2Config(**SMALL))
    if family == "qwen3":  # RMSNorm of q and k per head, a head_dim of its own
        return t.Qwen3ForCausalLM(t.Qwen3Config(**SMALL, head_dim=16))
    if family == "mistral":
        return t.MistralForCausalLM(t.MistralConfig(**SMALL))
    if family == "phi3":  # fused qkv_proj and gate_up_proj
        return t.Phi3ForCausalLM(t.Phi3Config(**SMALL, pad_token_id=0))
    if family == "gemma":  # (1 + w) RMSNorm, embeddings scaled by sqrt(hidden), tanh GELU, tied head
        return t.GemmaForCausalLM(t.GemmaConfig(**SMALL, head_dim=8))
    if family == "gemma2":  # norms after attention and MLP, capped scores and logits, windows on every other layer
        return t.Gemma2ForCausalLM(t.Gemma2Config(**SMALL, head_dim=8, sliding_window=8, query_pre_attn_scalar=12,
                                                  attn_logit_softcapping=5.0, final_logit_softcapping=3.0))
    if family == "gemma3":  # q and k norms; two sliding layers (RoPE base 1e4) per full one (1e6)
        return t.Gemma3ForCausalLM(t.Gemma3TextConfig(**{**SMALL, "num_hidden_layers": 3}, head_dim=8, sliding_window=8,
                                                      sliding_window_pattern=3))
    if family == "mistral-window":  # a sliding window on every layer
        return t.MistralForCausalLM(t.MistralConfig(**SMALL, sliding_window=8))
    if family == "llama-theta":  # a RoPE base other than the default (Qwen2.5 and Llama 3 use 1e6 / 5e5)
        return t.LlamaForCausalLM(t.LlamaConfig(**SMALL, rope_theta=1e6))
    if family == "llama3-rope":  # Llama 3.1's frequency-dependent RoPE scaling
        return t.LlamaForCausalLM(t.LlamaConfig(**SMALL, rope_scaling={
            "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 16}))
    raise AssertionError(family)


FAMILIES = ("gpt2", "llama", "qwen2", "qwen3", "mistral", "phi3", "gemma", "gemma2", "gemma3", "mistral-window",
            "llama-theta", "llama3-rope")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("lms")
    out = {}
    for family in FAMILIES:
        torch.manual_seed(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = _model(family).eval()
            model.save_pretrained(root / family)
        out[family] = (model, root / family)
    return out


def _reference(model, prompt, new):
    ids = torch.from_numpy(np.asarray(prompt, np.int64)[None])
    with torch.no_grad():
        return model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=new,
                              pad_token_id=0).numpy()


PROMPTS = {"short": np.arange(3, 14) % 97, "past one chunk": (np.arange(40) * 7 + 5) % 97}


@pytest.mark.parametrize("prompt", sorted(PROMPTS))
@pytest.mark.parametrize("family", FAMILIES)
def test_greedy_generation_equals_transformers_at_fp32(saved, family, prompt):
    """64 new tokens, token for token. The short prompt (11 tokens) goes through the 8-token
    prefill program, then a padded 8; the long one (40) through the 32-token program, then
    the 8; new tokens one at a time through decode."""
    model, path = saved[family]
    lm = af.load(path, precision="fp32", max_context=128)
    assert isinstance(lm, af.models.CausalLM) and sorted(lm._nets) == [1, 8, 32]
    got = lm.generate(PROMPTS[prompt], max_new_tokens=64)
    np.testing.assert_array_equal(got, _reference(model, PROMPTS[prompt], 64))


@pytest.mark.parametrize("family", FAMILIES)
def test_next_token_logits_equal_transformers_at_fp32(saved, family):
    """The logits after a 40-token prompt (one prefill chunk, then 8 decode steps), against
    transformers' forward. Greedy tokens alone barely see positions in these small random
    models (a RoPE base of 10000 instead of 1e6 keeps every token); the logits do: that
    error is 1.5e-3 of their largest magnitude, while the measured difference here is float32
    summation order, at most 3.1e-7 of it."""
    model, path = saved[family]
    lm = af.load(path, precision="fp32", max_context=128)
    prompt = PROMPTS["past one chunk"]
    with torch.no_grad():
        want = model(torch.from_numpy(np.asarray(prompt, np.int64)[None])).logits[0, -1].numpy()
    got = lm.next_logits(prompt)
    assert np.abs(got - want).max() <= 1e-6 * np.abs(want).max()


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_fp16_generation_follows_transformers(saved, family):
    """At fp16 storage the greedy tokens of these models equal transformers' float32 ones for
    all 64 steps (measured; a near-tie between two logits could part them, none occurs here)."""
    model, path = saved[family]
    lm = af.load(path, max_context=128)
    np.testing.assert_array_equal(lm.generate(PROMPTS["short"], 64), _reference(model, PROMPTS["short"], 64))


@pytest.mark.parametrize("family", FAMILIES)
def test_fp16_logits_follow_transformers_at_every_step(saved, family):
    """At fp16 storage, on transformers' own 64 greedy tokens: the next-token logits have
    cosine >= 0.999 with transformers' float32 ones at every step, and af's greedy tokens
    equal transformers' until they part, if ever, at a near-tie: a step whose two best
    float32 logits are closer than twice af's logit error there."""
    model, path = saved[family]
    lm = af.load(path, max_context=128)
    prompt = PROMPTS["short"]
    ref = _reference(model, prompt, 64)[0]
    got = lm.generate(prompt, 64)[0]
    with torch.no_grad():
        want_all = model(torch.from_numpy(ref[None])).logits[0].numpy()
    parts = next((i for i in range(len(prompt), len(ref)) if got[i] != ref[i]), None)
    for i in range(len(prompt), len(ref) if parts is None else parts + 1):
        want, mine = want_all[i - 1], lm.next_logits(ref[:i])
        cos = float(mine @ want / np.linalg.norm(mine) / np.linalg.norm(want))
        assert cos >= 0.999, (i, cos)
    if parts is not None:
        top = np.sort(want_all[parts - 1])[::-1]
        err = np.abs(lm.next_logits(ref[:parts]) - want_all[parts - 1]).max()
        assert top[0] - top[1] <= 2 * err, (parts, top[:2], err)


@pytest.mark.parametrize("family", ["llama", "gemma2", "gemma3"])
def test_the_mil_backend_generates_what_the_sim_does(saved, family):
    """The emitted programs (prefill and decode, with the cache writes; Gemma 2's capping and
    the sliding windows) run by the mil backend."""
    _, path = saved[family]
    sim = af.load(path, max_context=64).generate(PROMPTS["past one chunk"], 6)
    mil = af.load(path, max_context=64, backend="mil").generate(PROMPTS["past one chunk"], 6)
    np.testing.assert_array_equal(mil, sim)


def test_the_engine_generates_what_the_sim_does_from_one_cache_buffer(saved, engine):
    """The three programs on the engine, through doubles of both dispatch paths that compute
    from the MIL and weights they are handed: the sim's tokens, and each cache one buffer
    bound to all three programs (prefill writes it, decode reads it)."""
    _, path = saved["llama"]
    sim = af.load(path, max_context=64).generate(PROMPTS["past one chunk"], 6)
    lm = af.load(path, max_context=64, backend="engine")
    assert sorted(lm._nets) == [1, 8, 32]
    np.testing.assert_array_equal(lm.generate(PROMPTS["past one chunk"], 6), sim)
    assert engine.shared_input_buffers() == 2 * lm.spec.layers
    assert engine.violations() == ""


def test_stream_sampling_and_stops(saved):
    model, path = saved["qwen2"]
    lm = af.load(path, precision="fp32", max_context=128)
    greedy = lm.generate(PROMPTS["short"], 20)
    assert list(lm.stream(PROMPTS["short"], 20)) == list(greedy[0, 11:])
    stop = int(greedy[0, 15])
    stopped = lm.generate(PROMPTS["short"], 20, stop=[stop])  # ends with the stop token
    assert stopped[0, -1] == stop and stopped.shape[1] == 11 + list(greedy[0, 11:]).index(stop) + 1
    a = lm.generate(PROMPTS["short"], 20, do_sample=True, temperature=0.8, top_p=0.9, seed=3)
    b = lm.generate(PROMPTS["short"], 20, do_sample=True, temperature=0.8, top_p=0.9, seed=3)
    np.testing.assert_array_equal(a, b)  # a seed repeats a sample
    np.testing.assert_array_equal(lm.generate(PROMPTS["short"], 20, do_sample=True, top_k=1, seed=5), greedy)


def test_refusals(saved, tmp_path):
    _, path = saved["gpt2"]
    lm = af.load(path, max_context=32)
    with pytest.raises(ValueError, match="exceed max_context=32"):
        lm.generate(np.arange(30), 8)
    with pytest.raises(IndexError, match="outside 0..99"):
        lm.generate([5, 100], 2)
    with pytest.raises(ValueError, match="must be in 1..128"):
        af.load(path, max_context=1000)
    with pytest.raises(ValueError, match="prompt is empty"):
        lm.generate([], 2)


def _word_tokenizer(directory):
    """A word-level tokenizer.json for the 100-token test vocabulary: "w0" .. "w99"."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    tok = Tokenizer(models.WordLevel({f"w{i}": i for i in range(100)}, unk_token="w0"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    tok.save(str(directory / "tokenizer.json"))
    return tok


def test_text_prompts_and_the_generate_command(saved, capsys):
    from aneforge.cli import main
    model, path = saved["llama"]
    tok = _word_tokenizer(path)
    text = " ".join(f"w{int(i)}" for i in PROMPTS["short"])
    lm = af.load(path, precision="fp32", max_context=64)
    got = lm.generate(text, 12)
    np.testing.assert_array_equal(got, _reference(model, PROMPTS["short"], 12))
    assert main(["generate", str(path), "--prompt", text, "--max-new-tokens", "12", "--precision", "fp32",
                 "--max-context", "64"]) == 0
    assert capsys.readouterr().out.strip() == tok.decode(list(got[0, 11:]))
    assert main(["generate", str(path), "--max-new-tokens", "3"]) == 2
    assert "give --prompt TEXT or --ids" in capsys.readouterr().err


CALIBRATION = ["w3 w17 w42 w8 w8 w61 w5 w90 w23 w11 w70 w2 w33", "w50 w51 w9 w14 w77 w3 w28 w45 w60"]


@pytest.mark.parametrize("fmt", ["int8", "int4"])
def test_compressed_weights_gated_on_calibration_text(saved, tmp_path, fmt):
    """compress= with calibration text: the widest (prefill) program is gated on its logits
    and keys/values over the texts; the decode program takes the very same packed weights.
    What a user sees: fewer weight bytes, next-token logits close to the fp16 model's on
    another prompt, and the report's measured cosine at or above min_cosine."""
    import shutil
    _, src = saved["llama"]
    path = tmp_path / "llama"
    shutil.copytree(src, path)
    _word_tokenizer(path)
    fp16 = af.load(path, max_context=64)
    lm = af.load(path, max_context=64, compress=fmt, calibration=CALIBRATION, min_cosine=0.99)
    report = lm.compression_report()
    assert report["gate"] == "calibration" and report["min_cosine"] >= 0.99
    assert lm.weight_bytes <= {"int8": 0.55, "int4": 0.40}[fmt] * fp16.weight_bytes, lm.weight_bytes  # 0.548, 0.335
    formats = {r["layer"]: r["format"] for r in report["layers"]}
    assert formats["model.layers.0.self_attn.q_proj"] in ("int8", "int4")
    assert not any(k.startswith("embedding_") and v != "fp16" for k, v in formats.items())  # RoPE tables stay
    prefill = lm._nets[32].packed_weights()
    for n in (8, 1):  # the other programs hold the same packed weights
        other = lm._nets[n].packed_weights()
        assert sorted(other) == sorted(prefill)
        for name in prefill:
            np.testing.assert_array_equal(prefill[name].dequantize(), other[name].dequantize())
    a, b = lm.next_logits(PROMPTS["past one chunk"]), fp16.next_logits(PROMPTS["past one chunk"])
    cos = float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    assert cos >= {"int8": 0.9995, "int4": 0.99}[fmt], cos  # measured 0.99996 / 0.9919 (deterministic)


def test_compression_options_are_checked(saved):
    _, path = saved["llama"]
    with pytest.raises(ValueError, match="not weight layers of this model"):
        af.load(path, max_context=64, compress={"q_proj": "int8"})
    with pytest.raises(ValueError, match="give compress="):
        af.load(path, max_context=64, min_cosine=0.99)


CHAT_TEMPLATE = ("{{ bos_token }} {% for m in messages %}{% if m['role'] == 'user' %}w1{% else %}w2{% endif %} "
                 "{{ m['content'] }} w4 {% endfor %}{% if add_generation_prompt %}w2{% endif %}")


def test_chat_renders_the_template_as_transformers_does(saved, tmp_path):
    import json
    import shutil
    model, path = saved["qwen2"]
    chat_dir = tmp_path / "chat"
    shutil.copytree(path, chat_dir)
    _word_tokenizer(chat_dir)
    (chat_dir / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "w98", "eos_token": "w99",
         "chat_template": CHAT_TEMPLATE}))
    messages = [{"role": "user", "content": "w5 w6 w7"}, {"role": "assistant", "content": "w8"},
                {"role": "user", "content": "w9 w10"}]
    ref_tok = transformers.PreTrainedTokenizerFast(tokenizer_file=str(chat_dir / "tokenizer.json"), bos_token="w98",
                                                   eos_token="w99", chat_template=CHAT_TEMPLATE)
    want = ref_tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)
    want = list(want["input_ids"])
    assert want[:3] == [98, 1, 5]  # bos, the user's marker, the first word
    lm = af.load(chat_dir, precision="fp32", max_context=64)
    assert lm.chat_ids(messages) == want
    reply = lm.chat(messages, max_new_tokens=10)
    new = _reference(model, want, 10)[0, len(want):]
    assert reply == ref_tok.decode(new, skip_special_tokens=True)
    with pytest.raises(TypeError, match="list of"):
        lm.chat("hello")
    (chat_dir / "tokenizer_config.json").write_text(json.dumps({"bos_token": "w98"}))
    with pytest.raises(ValueError, match="no chat template"):
        lm.chat(messages)
    with pytest.raises(FileNotFoundError, match="no tokenizer.json"):
        af.load(path, max_context=16).chat(messages)


def test_the_decode_program_never_copies_a_cache(saved):
    """A decode step's cost outside attention does not grow with the context: each cache is
    read by one matmul as it lies (transposed scores from the keys, the transposed output
    from the transposed values), no layer produces anything as large as a cache, and the only layers as wide as
    the context are the attention scores' (matmul, scale, mask, concat, softmax, slice).
    The step returns only its own keys and values, which the host writes in place."""
    import re
    _, path = saved["llama"]
    C = 128  # the config's positions
    lm = af.load(path, max_context=C)
    net = lm._nets[1]
    spec = lm.spec
    cache = spec.kv_heads * spec.head_dim * C
    assert spec.heads * C < cache  # so "as large as a cache" cannot be the scores
    lines = net.text().splitlines()
    caches = {m.group(1): m.group(2) for m in (re.match(r"\s*(%\d+) = input '([kv]\d+)'", ln) for ln in lines) if m}
    assert len(caches) == 2 * spec.layers
    readers = {}
    for ln in lines:
        m = re.match(r"\s*%\d+ = ([\w+]+)\((.*?)\)(?: \{.*\})? : \(([\d, ]+)\)", ln)
        if not m:
            continue
        op, args, shape = m.group(1), m.group(2), [int(d) for d in m.group(3).split(",")]
        for a in re.findall(r"%\d+", args):
            if a in caches:
                readers.setdefault(caches[a], []).append(op)
        size = int(np.prod(shape))
        assert size < cache, ln
        if size >= C:
            assert op in {"matmul", "mul", "add", "concat", "softmax", "slice"}, ln
    assert readers == {name: ["matmul"] for name in caches.values()}
    held = sum(2 * int(np.prod(shape)) for name, shape, _ in net.inputs if name in caches.values())
    assert lm.cache_bytes == held and f"KV caches {held / 2**20:.2f} MiB fp16, shared by the programs" in repr(lm)
    assert [o[0] for o in net.outputs] == ["logits"] + [f"{kv}{i}" for i in range(spec.layers) for kv in "kv"]
    assert all(np.prod(shape) == spec.kv_heads * spec.head_dim for name, shape, _ in net.outputs if name != "logits")


def test_projections_are_1x1_convs_in_the_channels_first_layout_on_every_target(saved):
    """The MIL the engine is given: every projection a 1x1 conv of a (1, C, 1, S) tensor (the
    layout of Apple's ml-ane-transformers), for each target family's limits; no linear ops;
    the matmuls are attention's over the caches and the lookups (embeddings, RoPE tables, the
    last token, as one-hot matmuls); the transposes
    move only a step's own rows (at most S x hidden: the embedding, once)."""
    import re
    per_layer = {"llama": 7, "qwen3": 7, "gpt2": 4, "phi3": 4}
    for family, n in per_layer.items():
        _, path = saved[family]
        for target in ("h13", "h16g", "h18"):
            lm = af.load(path, max_context=64, target=target)
            spec = lm.spec
            for S, net in lm._nets.items():
                mil = net.mil_text()
                convs = re.findall(r"tensor<fp16, \[([\d, ]+)\]> \w+ = conv\(", mil)
                assert len(convs) == n * spec.layers + 1, (family, target, S)
                shapes = [tuple(int(d) for d in c.split(",")) for c in convs]
                assert all(sh[0] == 1 and sh[2] == 1 and sh[3] == S for sh in shapes[:-1]), (family, S, shapes)
                assert shapes[-1] == (1, spec.vocab, 1, 1)  # the head, on the last position
                assert " linear(" not in mil
                lookups = (2 if family == "gpt2" else 3) + (S > 1)  # embeddings (and RoPE tables), the last token
                assert len(re.findall(r" = matmul\(", mil)) == 4 * spec.layers + lookups
                for t in re.findall(r"tensor<fp16, \[([\d, ]+)\]> \w+ = transpose\(", mil):
                    assert np.prod([int(d) for d in t.split(",")]) <= S * spec.hidden, (family, S, t)


SAVE_LM = r"""
import sys, warnings, torch, transformers
torch.manual_seed(0)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    cfg = transformers.LlamaConfig(vocab_size=16000, hidden_size=512, num_hidden_layers=4, num_attention_heads=8,
                                   num_key_value_heads=4, intermediate_size=1376, max_position_embeddings=256)
    model = transformers.LlamaForCausalLM(cfg).eval()
    if sys.argv[2] != "float32":
        model = model.to(getattr(torch, sys.argv[2]))
    model.save_pretrained(sys.argv[1])
"""

LM_PEAK = r"""
import sys, numpy as np, aneforge as af
def status(key):  # this process image's own figures (ru_maxrss would count the parent's before exec)
    return int(next(ln.split()[1] for ln in open("/proc/self/status") if ln.startswith(key))) * 1024
before = status("VmRSS:")
lm = af.load(sys.argv[1], max_context=64)
lm.generate([1, 2, 3], 2)
print((status("VmHWM:") - before) / lm._nets[1].weight_bytes)
"""


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_loading_peaks_within_1_3x_of_the_programs_weight_bytes(tmp_path, dtype):
    """A 29M-parameter Llama checkpoint, float32 or bfloat16: the loading process's peak RSS
    grows by at most 1.3x the weight bytes the programs hold (issue 23's bound). Weights are
    read a tensor at a time straight into fp16 bits which the three programs read in place
    (measured 1.22x for both; reading the checkpoint whole as float32, as before, measured
    4.0x and 4.1x)."""
    import subprocess
    import sys
    if not __import__("os").path.exists("/proc/self/statm"):
        pytest.skip("needs /proc")
    (tmp_path / "save.py").write_text(SAVE_LM)
    (tmp_path / "peak.py").write_text(LM_PEAK)
    subprocess.run([sys.executable, str(tmp_path / "save.py"), str(tmp_path / "m"), dtype], check=True,
                   capture_output=True)
    r = subprocess.run([sys.executable, str(tmp_path / "peak.py"), str(tmp_path / "m")], capture_output=True,
                       text=True, check=True)
    ratio = float(r.stdout.split()[-1])
    assert ratio <= 1.3, ratio


def test_an_fp16_checkpoint_gives_the_programs_the_same_weights(saved, tmp_path, monkeypatch):
    """float16 and float32 checkpoints of one model load to the same fp16 weights (rounded to
    nearest even either way, subnormals flushed as the program does), read in small chunks
    here to cross chunk boundaries: identical logits."""
    from aneforge.models import _files
    model, path = saved["llama"]
    model16 = __import__("copy").deepcopy(model).to(torch.float16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model16.save_pretrained(tmp_path / "f16")
    monkeypatch.setattr(_files.SafetensorsTensors, "_CHUNK", 1000)
    prompt = PROMPTS["short"]
    np.testing.assert_array_equal(af.load(tmp_path / "f16", max_context=64).next_logits(prompt),
                                  af.load(path, max_context=64).next_logits(prompt))


def _conv_shapes(net):
    """(name, output shape) of each conv in a net's MIL."""
    import re
    return [(m.group(2), tuple(int(d) for d in m.group(1).split(",")))
            for m in re.finditer(r"tensor<fp\d+, \[([\d, ]+)\]> (\w+) = conv\(", net.mil_text())]


def test_a_vocabulary_wider_than_the_targets_axis_runs_in_pieces(saved, monkeypatch):
    """Qwen's 151936 tokens exceed the widest axis a target holds (65536): the head runs in
    equal pieces (3 of 34 here, the last padded), stacked along the height. Here the limit is
    lowered to 40 for a 100-token model."""
    import aneforge.models.causal_lm as cl
    monkeypatch.setattr(cl, "_HEAD_MAX", 40)
    model, path = saved["llama"]
    lm = af.load(path, precision="fp32", max_context=128)
    assert lm._nets[1].outputs[0][1] == (1, 34, 3, 1)
    assert [sh for _, sh in _conv_shapes(lm._nets[1])][-3:] == [(1, 34, 1, 1)] * 2 + [(1, 32, 1, 1)]
    prompt = PROMPTS["past one chunk"]
    with torch.no_grad():
        want = model(torch.from_numpy(np.asarray(prompt, np.int64)[None])).logits[0, -1].numpy()
    assert np.abs(lm.next_logits(prompt) - want).max() <= 1e-6 * np.abs(want).max()
    np.testing.assert_array_equal(lm.generate(prompt, 8), _reference(model, prompt, 8))


def test_a_gemma3_image_text_checkpoint_generates_as_its_language_model(tmp_path):
    """Gemma 3's 4B-27B checkpoints are image-text models (Gemma3ForConditionalGeneration):
    af.load builds their language model (config text_config, weights under language_model.)
    and generates from text what transformers' image-text model generates from the same ids."""
    torch.manual_seed(0)
    text = {**SMALL, "vocab_size": 300, "head_dim": 8, "sliding_window": 8, "sliding_window_pattern": 2}
    vision = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=32,
                  patch_size=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = transformers.Gemma3ForConditionalGeneration(transformers.Gemma3Config(
            text_config=text, vision_config=vision, mm_tokens_per_image=4, image_token_index=299, boi_token_index=297,
            eoi_token_index=298)).eval()
        model.save_pretrained(tmp_path)
    lm = af.load(tmp_path, precision="fp32", max_context=128)
    assert lm.spec.family == "gemma3_text" and lm.spec.window == 8
    prompt = PROMPTS["past one chunk"]
    np.testing.assert_array_equal(lm.generate(prompt, 16), _reference(model, prompt, 16))


def test_a_tied_head_is_held_and_written_once(tmp_path):
    """A head tied to the embedding (GPT-2, Gemma, small Qwens) is the same table read as a
    (V, D) lookup and a (V, D, 1, 1) conv: the program's weight bytes and the engine's weight
    blob hold it once; an untied head adds exactly its V x D fp16 values (and the blob entry's
    64-byte header, 64-byte aligned)."""
    sizes = {}
    for tied in (True, False):
        torch.manual_seed(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            transformers.LlamaForCausalLM(transformers.LlamaConfig(**SMALL, tie_word_embeddings=tied)).save_pretrained(
                tmp_path / str(tied))
        net = af.load(tmp_path / str(tied), max_context=16)._nets[1]
        sizes[tied] = net.weight_bytes, len(net.weight_blob())
    table = SMALL["vocab_size"] * SMALL["hidden_size"] * 2
    assert sizes[False][0] - sizes[True][0] == table
    assert sizes[False][1] - sizes[True][1] == 64 + table


def test_a_vocabulary_past_65536_compiles_for_every_target(tmp_path):
    """At the real limit: 70000 tokens (a tiny model) load for h13, h16g and h18, whose axes
    hold at most 65536, with the logits of transformers."""
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**{
            **SMALL, "vocab_size": 70000, "hidden_size": 16, "num_hidden_layers": 1, "intermediate_size": 32})).eval()
        model.save_pretrained(tmp_path)
    prompt = PROMPTS["short"]
    with torch.no_grad():
        want = model(torch.from_numpy(np.asarray(prompt, np.int64)[None])).logits[0, -1].numpy()
    for target in ("h13", "h16g", "h18"):
        lm = af.load(tmp_path, precision="fp32", max_context=32, target=target)
        assert lm._nets[1].outputs[0][1] == (1, 35000, 2, 1)
        assert np.abs(lm.next_logits(prompt) - want).max() <= 1e-6 * np.abs(want).max()


def test_sharded_checkpoints_load_and_bad_indexes_are_refused(saved, tmp_path):
    import json
    model, _ = saved["qwen2"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save_pretrained(tmp_path / "sharded", max_shard_size="20KB")
    shards = sorted(p.name for p in (tmp_path / "sharded").glob("model-*.safetensors"))
    assert len(shards) > 1 and not (tmp_path / "sharded" / "model.safetensors").exists()
    lm = af.load(tmp_path / "sharded", precision="fp32", max_context=64)
    np.testing.assert_array_equal(lm.generate(PROMPTS["short"], 16), _reference(model, PROMPTS["short"], 16))
    index = tmp_path / "sharded" / "model.safetensors.index.json"
    data = json.loads(index.read_text())
    first = next(iter(data["weight_map"]))
    data["weight_map"][first] = "../outside.safetensors"
    index.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="not a file in"):
        af.load(tmp_path / "sharded", max_context=64)
    # a tensor mapped to a shard that does not hold it
    data["weight_map"][first] = next(s for s in shards if first not in _keys(tmp_path / "sharded" / s))
    index.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="lack them"):
        af.load(tmp_path / "sharded", max_context=64)


def _keys(path):
    from safetensors import safe_open
    with safe_open(str(path), framework="np") as f:
        return set(f.keys())


def test_bfloat16_checkpoints_load(saved, tmp_path):
    """Released LLMs ship bfloat16 safetensors, which NumPy cannot hold: read as float32 (the
    same numbers), generation equals transformers' on the same bfloat16 weights in float32."""
    import copy
    import json
    import struct

    from aneforge.models._files import _bfloat16_safetensors
    model = copy.deepcopy(saved["llama"][0]).to(torch.bfloat16)  # the fixture's model stays float32
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save_pretrained(tmp_path / "bf16")
    model.float()  # the bfloat16 values, now in float32: the reference
    lm = af.load(tmp_path / "bf16", precision="fp32", max_context=64)
    np.testing.assert_array_equal(lm.generate(PROMPTS["short"], 16), _reference(model, PROMPTS["short"], 16))
    import ml_dtypes  # noqa: F401  (registers bfloat16 with NumPy: safetensors then returns such arrays)
    lm = af.load(tmp_path / "bf16", precision="fp32", max_context=64)
    np.testing.assert_array_equal(lm.generate(PROMPTS["short"], 16), _reference(model, PROMPTS["short"], 16))

    def file(header, payload=b"\0" * 8):
        raw = json.dumps(header).encode()
        path = tmp_path / "t.safetensors"
        path.write_bytes(struct.pack("<Q", len(raw)) + raw + payload)
        return path
    good = {"w": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 8]}}
    np.testing.assert_array_equal(_bfloat16_safetensors(file(good, bytes([0, 0x3F, 0, 0x40, 0, 0xBF, 0, 0])) )["w"],
                                  [[0.5, 2.0], [-0.5, 0.0]])
    for bad in ({"w": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 16]}},   # past the file
                {"w": {"dtype": "BF16", "shape": [3, 2], "data_offsets": [0, 8]}},    # size disagrees
                {"w": {"dtype": "Q4", "shape": [2, 2], "data_offsets": [0, 8]}},      # unknown dtype
                {"w": {"dtype": "BF16", "shape": [-2, -2], "data_offsets": [0, 8]}},  # negative sizes
                {"w": {"dtype": "BF16", "shape": [2 ** 32, 2 ** 32], "data_offsets": [0, 0]}},  # 2^64 wraps to 0 in int64
                {"w": {"dtype": "BF16", "shape": [2, 2]}}):                           # no range
        with pytest.raises(ValueError, match="bad dtype, shape or range"):
            _bfloat16_safetensors(file(bad))
    (tmp_path / "t.safetensors").write_bytes(struct.pack("<Q", 1 << 40) + b"{}")
    with pytest.raises(ValueError, match="header size"):
        _bfloat16_safetensors(tmp_path / "t.safetensors")
