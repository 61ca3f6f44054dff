#!/usr/bin/env python3
"""Regenerate tests/golden/mil/ from the current emitter, but only after the MIL equivalence
suite (tests/test_mil_equivalence.py: sim vs the interpreted MIL, both opsets) and the
coremltools load check (tests/test_mil.py) pass: a golden file records MIL that has been run
and that Core ML's own reader accepts, not only MIL that was written.

    python scripts/update_mil_goldens.py
"""
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def main() -> int:
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(ROOT / "tests" / "test_mil_equivalence.py"),
                        str(ROOT / "tests" / "test_mil.py")], cwd=ROOT)
    if r.returncode != 0:
        print("update_mil_goldens: the equivalence suite or the coremltools load check fails; goldens left unchanged",
              file=sys.stderr)
        return 1
    from milgolden import GOLDEN, OPSETS, emitted
    changed, shas = 0, {o: [] for o in OPSETS}
    wanted = set()
    for opset, name, text, sha in emitted():
        path = GOLDEN / opset / name
        wanted.add(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            changed += 1
        shas[opset].append(f"{name} {sha}")
    for opset in OPSETS:
        (GOLDEN / opset / "blobs.sha256").write_text("\n".join(sorted(shas[opset])) + "\n")
    for stale in set(GOLDEN.glob("*/*.mil")) - wanted:
        stale.unlink()
        changed += 1
    print(f"update_mil_goldens: {changed} golden file(s) written or removed under {GOLDEN.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
