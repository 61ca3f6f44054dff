"""A spectrogram of a chirp and two tones from af.dsp.stft (Hann window, Whisper's 400 / 160
framing), plotted as a PNG beside its error against NumPy.

    python examples/science/spectrogram.py [--small] [--out DIR]

Check: the power spectrum matches a float64 NumPy STFT (the same framing, window and reflect
padding) within 1e-3 of its peak's magnitude.
"""
import argparse
import pathlib

import numpy as np

import aneforge as af


def numpy_stft(x, n_fft, hop, window):
    """torch.stft's framing (center=True, reflect padding) in float64 NumPy."""
    padded = np.pad(x.astype(np.float64), n_fft // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    return np.fft.rfft(frames * window, axis=-1).T          # (bins, frames)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="half a second of audio (the tests' size)")
    ap.add_argument("--out", default=".", help="where spectrogram.png goes")
    args = ap.parse_args()
    rate, seconds = 16000, (0.5 if args.small else 3.0)
    t = np.arange(int(rate * seconds)) / rate
    chirp = np.sin(2 * np.pi * (200 * t + (3000 / (2 * seconds)) * t * t))       # 200 Hz -> 3.2 kHz
    audio = (0.6 * chirp + 0.2 * np.sin(2 * np.pi * 1000 * t) + 0.1 * np.sin(2 * np.pi * 5000 * t)).astype(np.float32)

    n_fft, hop = 400, 160
    window = af.dsp.hann_window(n_fft)
    x = af.input(audio.shape, name="audio")
    re, im = af.dsp.stft(x, n_fft, hop_length=hop, window=window)
    magnitude = af.compile(af.sqrt(re * re + im * im))(audio=audio)
    want = np.abs(numpy_stft(audio, n_fft, hop, window.astype(np.float64)))
    err = float(np.abs(magnitude - want).max() / want.max())

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    extent = [0, seconds, 0, rate / 2000]
    db = 20 * np.log10(np.maximum(magnitude, 1e-4))
    img = axes[0].imshow(db, origin="lower", aspect="auto", extent=extent, cmap="inferno", vmin=db.max() - 80)
    fig.colorbar(img, ax=axes[0], label="dB")
    axes[0].set(title="af.dsp.stft (fp16 program)", xlabel="s", ylabel="kHz")
    img = axes[1].imshow(np.abs(magnitude - want) / want.max(), origin="lower", aspect="auto", extent=extent,
                         cmap="viridis")
    fig.colorbar(img, ax=axes[1], label="|af - NumPy| / peak")
    axes[1].set(title="error against float64 NumPy", xlabel="s")
    fig.tight_layout()
    out = pathlib.Path(args.out) / "spectrogram.png"
    fig.savefig(out, dpi=100)
    print(f"wrote {out}: {magnitude.shape[0]} bins x {magnitude.shape[1]} frames")
    print(f"check: magnitude within {err:.1e} of the peak of a float64 NumPy STFT")
    if err > 1e-3:
        raise SystemExit("FAIL: the spectrogram differs from NumPy's")


if __name__ == "__main__":
    main()
