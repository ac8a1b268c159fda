"""The one dataset contract: images, captions, which caption belongs to which image, relevance.

Everything that trains on or evaluates image-caption data (``train.fit``,
``train.batch_positives``, the evaluate command, the lessons) asks only for
what :class:`PairDataset` states. Two classes fulfil it:
:class:`cmalign.data.CaptionSet` (your folders, Karpathy/COCO files: a caption
is relevant to its own image only) and :class:`cmalign.toy.world.ToyDataset`
(the world decides which captions fit which images). ``len(dataset)`` is the
number of captions, i.e. of (image, caption) pairs, for both; the number of
images is ``len(dataset.images)``.
Taught in notebooks/03_training_alignment.ipynb and 05_retrieval_evaluation.ipynb.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import torch


@runtime_checkable
class PairDataset(Protocol):
    """Images with captions; caption ``t`` belongs to image ``text_to_image[t]``.

    Attributes
    ----------
    images : sequence of images (paths, PIL images or arrays), length n_images
    captions : sequence of str, length n_texts
    text_to_image : sequence of int, length n_texts
    """

    images: Sequence[Any]
    captions: Sequence[str]

    @property
    def text_to_image(self) -> Sequence[int]: ...

    def __len__(self) -> int:
        """The number of captions (pairs)."""
        ...

    def relevance(self) -> torch.Tensor:
        """Which images each caption describes: bool (n_texts, n_images)."""
        ...

    def relevance_between(
        self, text_idx: Sequence[int], image_idx: Sequence[int]
    ) -> torch.Tensor:
        """The same for a subset: bool (len(text_idx), len(image_idx))."""
        ...


def check_pair_dataset(dataset: object, name: str = "dataset") -> PairDataset:
    """Return ``dataset`` if it fulfils :class:`PairDataset`, else raise naming what is missing."""
    missing = [
        attr
        for attr in ("images", "captions", "text_to_image", "relevance", "relevance_between", "__len__")
        if not hasattr(dataset, attr)
    ]
    if missing:
        raise TypeError(
            f"{name} ({type(dataset).__name__}) is not a PairDataset: it lacks "
            + ", ".join(missing)
            + " (use cmalign.data.CaptionSet or cmalign.toy.world.ToyDataset)"
        )
    return dataset  # type: ignore[return-value]
