"""How good is a model on the toy world? Retrieval and zero-shot on fresh data.

:func:`evaluate_toy_model` is the quality check behind ``data/toy_clip``'s
``metrics.json``, the slow test and the README's numbers. Every score uses
the world's exact relevance (a caption such as "a red circle" fits every
image with one red circle), never the pair index alone.
Taught in notebooks/03_training_alignment.ipynb.
"""

from __future__ import annotations

from ..embed import class_embeddings, embed_images, embed_texts
from ..metrics import retrieval_metrics, zero_shot_accuracy
from ..models import ClipBundle
from .world import make_dataset

TEST_SEED = 20_261_127  # never used for training data


def evaluate_toy_model(
    bundle: ClipBundle, n: int = 1000, seed: int = TEST_SEED
) -> dict[str, float]:
    """Quality of a model on ``n`` freshly generated pairs per split.

    Returns
    -------
    dict
        R@1/5/10, ranks and MRR both ways on the ``"test"`` split, the same with
        a ``heldout_`` prefix on the ``"heldout_combos"`` split, and
        ``zero_shot_color_accuracy`` / ``zero_shot_shape_accuracy`` on the
        single-object test images.
    """
    results: dict[str, float] = {}
    for split, prefix in (("test", ""), ("heldout_combos", "heldout_")):
        data = make_dataset(n, seed=seed, split=split)
        image_emb = embed_images(bundle, data.images, progress=False)
        text_emb = embed_texts(bundle, data.captions, progress=False)
        metrics = retrieval_metrics(image_emb, text_emb, relevance=data.relevance())
        results.update({prefix + k: v for k, v in metrics.items()})
        if split != "test":
            continue
        for key in ("color", "shape"):
            images, labels, names, templates = data.zero_shot_task(key)
            classes = class_embeddings(bundle, names, templates)
            single = embed_images(bundle, images, progress=False)
            results[f"zero_shot_{key}_accuracy"] = zero_shot_accuracy(
                single, classes, labels
            )
    return results
