"""The naive text-to-image retrieval that this project started from, kept to be measured.

The original script (not in this repository; reproduced from its description
in the project's issues) answered every query by running the *whole* CLIP over
every gallery image, paired with as many copies of the query, and then ranked
with ``argsort`` along the wrong axis of ``logits_per_image`` (the axis of the
identical text copies), so its "top images" were arbitrary.
:func:`retrieve_images_from_text` reproduces it, bug included;
:func:`retrieve_images_fixed` keeps the per-query re-encoding but ranks along
the image axis (correct, still slow). notebooks/05_retrieval_evaluation.ipynb
and ``python -m benchmarks.run`` compare both with a precomputed
:class:`cmalign.retrieval.EmbeddingIndex`. Do not use them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..images import ImageLike, load_rgb_images
from ..models import ClipBundle


def _logits(bundle: ClipBundle, queries: list[str], images: Sequence[ImageLike]):
    inputs = bundle.processor(
        text=queries,
        images=load_rgb_images(images),
        return_tensors="pt",
        padding=True,
        truncation=True,
    )
    inputs = {key: value.to(bundle.device) for key, value in inputs.items()}
    with torch.no_grad():
        return bundle.model(**inputs)


def retrieve_images_from_text(
    bundle: ClipBundle, query: str, images: Sequence[ImageLike], k: int = 3
) -> list[int]:
    """The original retrieval, bug included: returns k indices (of the text copies)."""
    outputs = _logits(bundle, [query] * len(images), images)
    probs = outputs.logits_per_image.softmax(dim=1)  # (n_images, n_texts)
    return probs.argsort(dim=1, descending=True)[0][:k].tolist()  # ranks texts


def retrieve_images_fixed(
    bundle: ClipBundle, query: str, images: Sequence[ImageLike], k: int = 3
) -> list[int]:
    """The same full re-encoding per query, ranking along the image axis."""
    outputs = _logits(bundle, [query], images)
    return outputs.logits_per_text[0].argsort(descending=True)[:k].tolist()
