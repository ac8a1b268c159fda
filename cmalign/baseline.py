"""The seed's text-to-image retrieval, reproduced for comparison.

The project started from a script (not in this repository; reproduced here
from its description in the project's issues) whose ``retrieve_images_from_text`` ran the
whole CLIP over every image *for every query*, pairing the images with as many
copies of the query, and then ranked with ``argsort`` over the wrong axis of
``logits_per_image`` (the axis of the identical text copies), so its "top
images" were arbitrary. It is kept here only so that
notebooks/05_retrieval_evaluation.ipynb and ``python -m cmalign.bench`` can
measure its cost and correctness against a precomputed
:class:`cmalign.retrieval.EmbeddingIndex`. Do not use it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .images import ImageLike, load_rgb_images
from .models import ClipBundle


def seed_retrieve_images_from_text(
    bundle: ClipBundle, query: str, images: Sequence[ImageLike], k: int = 3
) -> list[int]:
    """The seed's retrieval, bug included: returns k indices (of the text copies)."""
    inputs = bundle.processor(
        text=[query] * len(images),
        images=load_rgb_images(images),
        return_tensors="pt",
        padding=True,
    )
    inputs = {key: value.to(bundle.device) for key, value in inputs.items()}
    with torch.no_grad():
        outputs = bundle.model(**inputs)
    probs = outputs.logits_per_image.softmax(dim=1)  # (n_images, n_texts)
    return probs.argsort(dim=1, descending=True)[0][
        :k
    ].tolist()  # ranks texts, not images


def seed_retrieve_fixed(
    bundle: ClipBundle, query: str, images: Sequence[ImageLike], k: int = 3
) -> list[int]:
    """The same full re-encoding per query, ranking along the image axis (correct, slow)."""
    inputs = bundle.processor(
        text=[query], images=load_rgb_images(images), return_tensors="pt", padding=True
    )
    inputs = {key: value.to(bundle.device) for key, value in inputs.items()}
    with torch.no_grad():
        outputs = bundle.model(**inputs)
    return outputs.logits_per_text[0].argsort(descending=True)[:k].tolist()
