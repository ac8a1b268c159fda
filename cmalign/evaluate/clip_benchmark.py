"""Metrics computed exactly as LAION's CLIP_benchmark computes them, under its names.

People keep tables of CLIP_benchmark results; these functions give numbers
that drop into them. Where its protocol differs from this library's strict
one (:mod:`cmalign.metrics`: ties count against the query), the difference is
stated, and ``python -m cmalign.evaluate`` reports both under their own names.

- :func:`clip_benchmark_recall`: ``image_retrieval_recall@K`` (text->image) and
  ``text_retrieval_recall@K`` (image->text), ties broken by ``torch.topk``.
- :func:`clip_benchmark_zeroshot`: ``acc1``, ``acc5``, ``mean_per_class_recall``.

Taught in notebooks/05_retrieval_evaluation.ipynb.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..metrics import relevance_from_index
from ..utils import check_embeddings


def clip_benchmark_recall(
    image_emb: torch.Tensor,
    text_emb: torch.Tensor,
    text_to_image: Sequence[int],
    ks: Sequence[int] = (1, 5, 10),
    chunk_size: int = 1024,
) -> dict[str, float]:
    """Recall@K exactly as LAION's CLIP_benchmark computes it, under its key names.

    ``image_retrieval_recall@K`` is text->image, ``text_retrieval_recall@K``
    image->text (a hit when any of the image's captions is retrieved). Unlike
    :func:`retrieval_metrics`, ties are broken by ``torch.topk``'s order, so a
    caption duplicated verbatim, or an image duplicated in the gallery, can
    count as a hit where the strict protocol counts it against the query.
    Report both, under their own names.

    Parameters
    ----------
    image_emb : torch.Tensor of shape (n_images, dim), L2-normalised
    text_emb : torch.Tensor of shape (n_texts, dim), L2-normalised
    text_to_image : sequence of int of length n_texts

    Returns
    -------
    dict
        ``image_retrieval_recall@K``, ``text_retrieval_recall@K`` for each K.
    """
    image_emb = check_embeddings(image_emb, "image_emb")
    text_emb = check_embeddings(text_emb, "text_emb")
    if len(text_to_image) != len(text_emb):
        raise ValueError(
            f"text_to_image has {len(text_to_image)} entries for {len(text_emb)} texts"
        )
    owner = relevance_from_index(text_to_image, len(image_emb)).int().argmax(1)
    n_images, n_texts = len(image_emb), len(text_emb)

    texts, images = text_emb.float(), image_emb.float()

    def hits(n_queries: int, scores_of, positive_rows, k: int) -> torch.Tensor:
        out = []
        for a in range(0, n_queries, chunk_size):  # bounded memory
            scores = scores_of(a, a + chunk_size)
            top = torch.topk(scores, min(k, scores.shape[1]), dim=1).indices
            out.append(positive_rows(a, a + len(scores)).gather(1, top).any(dim=1))
        return torch.cat(out)

    # Always texts @ images.T, as CLIP_benchmark computes it (then transposed
    # for image queries), so exact ties come out exactly as there.
    def text_scores(a: int, b: int) -> torch.Tensor:
        return texts[a:b] @ images.T

    def image_scores(a: int, b: int) -> torch.Tensor:
        return (texts @ images[a:b].T).T

    def text_rows(a: int, b: int) -> torch.Tensor:  # (b - a, n_images)
        return owner[a:b, None] == torch.arange(n_images)[None, :]

    def image_rows(a: int, b: int) -> torch.Tensor:  # (b - a, n_texts)
        return owner[None, :] == torch.arange(a, b)[:, None]

    out = {}
    for k in ks:
        out[f"image_retrieval_recall@{k}"] = float(
            hits(n_texts, text_scores, text_rows, k).float().mean()
        )
        out[f"text_retrieval_recall@{k}"] = float(
            hits(n_images, image_scores, image_rows, k).float().mean()
        )
    return out


def clip_benchmark_zeroshot(
    logits: torch.Tensor, labels: Sequence[int], ks: Sequence[int] = (1, 5)
) -> dict[str, float]:
    """Zero-shot classification scores as CLIP_benchmark reports them.

    Parameters
    ----------
    logits : torch.Tensor of shape (n_images, n_classes)
        Image-to-class-prompt similarities (any scale).
    labels : sequence of int of length n_images

    Returns
    -------
    dict
        ``acc1``, ``acc5`` (a hit when the label is among the top K classes;
        K is capped at the number of classes) and ``mean_per_class_recall``
        (top-1 recall averaged over the classes present in ``labels``).
    """
    labels = torch.as_tensor(list(labels), dtype=torch.long)
    if logits.ndim != 2 or len(logits) != len(labels):
        raise ValueError(
            f"logits must be (n_images, n_classes) with one row per label, "
            f"got {tuple(logits.shape)} for {len(labels)} labels"
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise ValueError(f"labels must be in [0, {logits.shape[1]})")
    out = {}
    for k in ks:
        top = logits.topk(min(k, logits.shape[1]), dim=1).indices
        out[f"acc{k}"] = float((top == labels[:, None]).any(dim=1).float().mean())
    predicted = logits.argmax(dim=1)
    recalls = [
        (predicted[labels == c] == c).float().mean() for c in labels.unique().tolist()
    ]
    out["mean_per_class_recall"] = float(torch.stack(recalls).mean())
    return out
