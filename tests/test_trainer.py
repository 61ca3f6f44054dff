"""af.Trainer on real data (scikit-learn's 8x8 digits, a small CNN): it reaches a stated
accuracy, its checkpoints resume bit-exactly, its plot is a real PNG, and bad checkpoints are
clear errors."""
import numpy as np
import pytest

import aneforge as af


def _digits():
    datasets = pytest.importorskip("sklearn.datasets")
    d = datasets.load_digits()
    X = (d.data / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    Y = d.target.astype(np.int32)
    order = np.random.default_rng(0).permutation(len(X))
    return X[order][:1500], Y[order][:1500], X[order][1500:], Y[order][1500:]


def _model(seed=0):
    af.nn.manual_seed(seed)
    return af.nn.Sequential(af.nn.Conv2d(1, 8, 3, padding=1), af.nn.GroupNorm(2, 8), af.nn.ReLU(), af.nn.MaxPool2d(2),
                            af.nn.Flatten(), af.nn.Dropout(0.1), af.nn.Linear(8 * 4 * 4, 10))


def test_trainer_reaches_90_percent_on_digits_and_plots(tmp_path):
    xtr, ytr, xte, yte = _digits()
    trainer = af.Trainer(_model(), af.optim.Adam(lr=3e-3), batch_size=50,
                         schedule=af.schedules.warmup(af.schedules.cosine(3e-3, total=150), steps=30), progress=False)
    history = trainer.fit(xtr, ytr, epochs=6, eval_data=(xte, yte))
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5, 6]
    assert history[-1]["loss"] < history[0]["loss"]
    assert history[-1]["eval_accuracy"] >= 0.90, history[-1]
    png = tmp_path / "curves.png"
    trainer.plot(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = __import__("matplotlib.pyplot").pyplot.imread(png)
    assert image.shape[0] > 200 and image.shape[1] > 500
    # the trained weights reach the module: its own eval graph agrees with the trainer's accuracy
    model = trainer.model.eval()
    x = af.input((len(xte), 1, 8, 8), name="x")
    logits = af.compile(model(x))(x=xte, **model.feeds())
    assert float((logits.argmax(1) == yte).mean()) == pytest.approx(history[-1]["eval_accuracy"], abs=0.01)


def test_checkpoints_resume_exactly(tmp_path):
    xtr, ytr, _, _ = _digits()
    xtr, ytr = xtr[:400], ytr[:400]
    straight = af.Trainer(_model(), af.optim.AdamW(lr=1e-2), batch_size=50, progress=False)
    straight.fit(xtr, ytr, epochs=2)
    ckpt = tmp_path / "run.ckpt"
    first = af.Trainer(_model(), af.optim.AdamW(lr=1e-2), batch_size=50, checkpoint=ckpt, progress=False)
    first.fit(xtr, ytr, epochs=1)
    resumed = af.Trainer(_model(), af.optim.AdamW(lr=1e-2), batch_size=50, checkpoint=ckpt, progress=False)
    resumed.fit(xtr, ytr, epochs=2, resume=True)
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    a, b = straight.step.parameters(), resumed.step.parameters()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert resumed.history[1]["loss"] == straight.history[1]["loss"]


def test_bad_checkpoints_and_inputs_are_clear_errors(tmp_path):
    xtr, ytr, _, _ = _digits()
    t = af.Trainer(_model(), af.optim.SGD(lr=0.1), batch_size=50, checkpoint=tmp_path / "c.ckpt", progress=False)
    t.fit(xtr[:100], ytr[:100], epochs=1)
    junk = tmp_path / "junk.ckpt"
    with open(junk, "wb") as f:
        np.savez(f, a=np.zeros(3))
    with pytest.raises(ValueError, match="no __meta__"):
        t.load_checkpoint(junk)
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match="not a checkpoint of this train step"):
        t.load_checkpoint(junk)
    # crafted records: wrong shapes, dtypes, counters; nothing is applied
    import io
    import json
    good = np.load(tmp_path / "c.ckpt")
    meta = json.loads(bytes(good["__meta__"]).decode())
    arrays = {k: good[k] for k in good.files if k != "__meta__"}
    before = {k: v.copy() for k, v in t.step.parameters().items()}
    for change, match in ((lambda m, a: a.update(state_0=np.zeros((2, 2), np.float32)), "state_0 is float32"),
                          (lambda m, a: a.update(state_1=np.zeros(a["state_1"].shape, np.int32)), "state_1 is int32"),
                          (lambda m, a: a.pop("state_2"), "state_2 is missing"),
                          (lambda m, a: m.update(steps=-1), "bad counters"),
                          (lambda m, a: m.update(rng={"bit_generator": "nope"}), "not a checkpoint"),
                          (lambda m, a: m.update(n_state=10**9), "holds 1000000000 state tensors")):
        m, a = json.loads(json.dumps(meta)), dict(arrays)
        change(m, a)
        buf = io.BytesIO()
        np.savez(buf, __meta__=np.frombuffer(json.dumps(m).encode(), np.uint8), **a)
        junk.write_bytes(buf.getvalue())
        with pytest.raises(ValueError, match=match):
            t.load_checkpoint(junk)
    for k, v in t.step.parameters().items():
        np.testing.assert_array_equal(v, before[k])
    other = af.Trainer(af.nn.Sequential(af.nn.Flatten(), af.nn.Linear(64, 10)), af.optim.SGD(lr=0.1), batch_size=50,
                       progress=False)
    other.fit(xtr[:100], ytr[:100], epochs=1)
    with pytest.raises(ValueError, match="state tensors"):
        other.load_checkpoint(tmp_path / "c.ckpt")
    with pytest.raises(ValueError, match="built by fit"):
        af.Trainer(_model(), af.optim.SGD(lr=0.1)).load_checkpoint(tmp_path / "c.ckpt")
    with pytest.raises(ValueError, match="fewer than one batch"):
        af.Trainer(_model(), af.optim.SGD(lr=0.1), batch_size=50).fit(xtr[:10], ytr[:10], epochs=1)
    with pytest.raises(ValueError, match="batch_size"):
        af.Trainer(_model(), af.optim.SGD(lr=0.1), batch_size=0)
    # a file the library did not write is never replaced by a checkpoint
    precious = tmp_path / "notes.txt"
    precious.write_text("mine")
    keep = af.Trainer(_model(), af.optim.SGD(lr=0.1), batch_size=50, checkpoint=precious, progress=False)
    with pytest.raises(FileExistsError, match="not an ANEForge checkpoint"):
        keep.fit(xtr[:100], ytr[:100], epochs=1)
    assert precious.read_text() == "mine"
    # a checkpoint into a missing directory fails without leaving anything behind
    bad = af.Trainer(_model(), af.optim.SGD(lr=0.1), batch_size=50, checkpoint=tmp_path / "no" / "c.ckpt", progress=False)
    with pytest.raises(OSError):
        bad.fit(xtr[:100], ytr[:100], epochs=1)
    assert not (tmp_path / "no").exists()
