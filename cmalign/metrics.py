"""Retrieval metrics in both directions: Recall@K, ranks, MRR; zero-shot accuracy.

Protocol (stated so numbers can be reproduced, cf. CLIP_benchmark):

* text -> image: each caption is a query; it is a hit at K when a relevant
  image is among the K most similar images.
* image -> text: each image is a query; with several captions per image
  (Flickr30k / COCO) it is a hit at K when **any** of its captions is in the
  top K.
* rank = position of the best-ranked relevant item (1 = best). Ties with
  irrelevant items count against the query (pessimistic), so a collapsed
  model that scores everything equally gets the worst rank, not the best.

Taught in notebooks/05_retrieval_evaluation.ipynb.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .utils import check_embeddings


def relevance_from_index(text_to_image: Sequence[int], n_images: int) -> torch.Tensor:
    """Boolean relevance matrix (n_texts, n_images) from each text's image index."""
    idx = torch.as_tensor(list(text_to_image), dtype=torch.long)
    if idx.ndim != 1 or (len(idx) and (idx.min() < 0 or idx.max() >= n_images)):
        raise ValueError(
            f"text_to_image entries must be image indices in [0, {n_images})"
        )
    relevance = torch.zeros(len(idx), n_images, dtype=torch.bool)
    relevance[torch.arange(len(idx)), idx] = True
    return relevance


def ranks(similarity: torch.Tensor, relevance: torch.Tensor) -> torch.Tensor:
    """Rank of the best relevant item for each query (1 = best, ties pessimistic).

    Parameters
    ----------
    similarity : torch.Tensor of shape (n_queries, n_items)
    relevance : torch.Tensor of shape (n_queries, n_items), bool

    Returns
    -------
    torch.Tensor of shape (n_queries,), int64
    """
    if similarity.shape != relevance.shape:
        raise ValueError(
            f"shapes differ: {tuple(similarity.shape)} vs {tuple(relevance.shape)}"
        )
    has_any = relevance.any(dim=1)
    if not has_any.all():
        row = int((~has_any).nonzero()[0])
        raise ValueError(f"query {row} has no relevant item; its rank is undefined")
    best_relevant = similarity.masked_fill(~relevance, float("-inf")).max(dim=1).values
    beaten_or_tied = (similarity >= best_relevant[:, None]) & ~relevance
    return beaten_or_tied.sum(dim=1) + 1


def _summary(prefix: str, r: torch.Tensor, ks: Sequence[int]) -> dict[str, float]:
    out = {f"{prefix}_R@{k}": float((r <= k).float().mean()) for k in ks}
    out[f"{prefix}_mean_rank"] = float(r.float().mean())
    out[f"{prefix}_median_rank"] = float(r.float().quantile(0.5))  # mean of middle two
    out[f"{prefix}_mrr"] = float((1.0 / r.float()).mean())
    return out


def retrieval_metrics(
    image_emb: torch.Tensor,
    text_emb: torch.Tensor,
    text_to_image: Sequence[int] | None = None,
    ks: Sequence[int] = (1, 5, 10),
    relevance: torch.Tensor | None = None,
) -> dict[str, float]:
    """Recall@K, mean / median rank and MRR, text->image and image->text.

    Parameters
    ----------
    image_emb : torch.Tensor of shape (n_images, dim), L2-normalised
    text_emb : torch.Tensor of shape (n_texts, dim), L2-normalised
    text_to_image : sequence of int of length n_texts, optional
        Index of each caption's image; several captions may share an image.
    ks : sequence of int
        Cut-offs for Recall@K.
    relevance : torch.Tensor of shape (n_texts, n_images), bool, optional
        Which images each caption describes, for worlds where one caption fits
        several images. Give exactly one of ``text_to_image`` and ``relevance``.

    Returns
    -------
    dict
        ``text_to_image_R@K``, ``image_to_text_R@K``, ``*_mean_rank``,
        ``*_median_rank``, ``*_mrr``. An image->text query is a hit when any of
        its captions is in the top K (see module docstring for ties).
    """
    image_emb = check_embeddings(image_emb, "image_emb")
    text_emb = check_embeddings(text_emb, "text_emb")
    if (text_to_image is None) == (relevance is None):
        raise ValueError("give exactly one of text_to_image and relevance")
    if relevance is None:
        if len(text_to_image) != len(text_emb):
            raise ValueError(
                f"text_to_image has {len(text_to_image)} entries for {len(text_emb)} texts"
            )
        relevance = relevance_from_index(text_to_image, len(image_emb))
    relevance = torch.as_tensor(relevance, dtype=torch.bool)
    if relevance.shape != (len(text_emb), len(image_emb)):
        raise ValueError(
            f"relevance must have shape (n_texts, n_images) = "
            f"{(len(text_emb), len(image_emb))}, got {tuple(relevance.shape)}"
        )
    if not all(isinstance(k, int) and k >= 1 for k in ks):
        raise ValueError(f"ks must be positive ints, got {ks}")
    # open_clip's names; the scale is left out (ranks do not depend on it).
    logits_per_text = text_emb.float() @ image_emb.float().T  # (n_texts, n_images)
    logits_per_image = logits_per_text.T  # (n_images, n_texts)
    try:
        t2i = ranks(logits_per_text, relevance)
    except ValueError as err:
        raise ValueError(f"text->image: {err} (text index)") from None
    try:
        i2t = ranks(logits_per_image, relevance.T)
    except ValueError as err:
        raise ValueError(
            f"image->text: {err} (image index; it has no caption)"
        ) from None
    return {**_summary("text_to_image", t2i, ks), **_summary("image_to_text", i2t, ks)}


def zero_shot_accuracy(
    image_emb: torch.Tensor, class_text_emb: torch.Tensor, labels: Sequence[int]
) -> float:
    """Top-1 zero-shot accuracy: fraction of images whose nearest class prompt is right.

    Parameters
    ----------
    image_emb : torch.Tensor of shape (n_images, dim), L2-normalised
    class_text_emb : torch.Tensor of shape (n_classes, dim), L2-normalised
        One (ensembled) prompt embedding per class, e.g. from
        :func:`cmalign.embed.class_embeddings`.
    labels : sequence of int of length n_images

    Returns
    -------
    float in [0, 1]
    """
    image_emb = check_embeddings(image_emb, "image_emb")
    class_text_emb = check_embeddings(class_text_emb, "class_text_emb")
    labels = torch.as_tensor(list(labels), dtype=torch.long)
    if len(labels) != len(image_emb):
        raise ValueError(f"{len(labels)} labels for {len(image_emb)} images")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(class_text_emb)):
        raise ValueError(f"labels must be in [0, {len(class_text_emb)})")
    predictions = (image_emb @ class_text_emb.T).argmax(dim=1)
    return float((predictions == labels).float().mean())


def clip_benchmark_recall(
    image_emb: torch.Tensor,
    text_emb: torch.Tensor,
    text_to_image: Sequence[int],
    ks: Sequence[int] = (1, 5, 10),
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
    positives = relevance_from_index(text_to_image, len(image_emb))  # (texts, images)
    if len(positives) != len(text_emb):
        raise ValueError(
            f"text_to_image has {len(positives)} entries for {len(text_emb)} texts"
        )
    scores = text_emb.float() @ image_emb.float().T  # (n_texts, n_images)

    def hits(scores: torch.Tensor, positives: torch.Tensor, k: int) -> torch.Tensor:
        top = torch.topk(scores, k, dim=1).indices  # CLIP_benchmark's tie order
        return positives.gather(1, top).any(dim=1)

    out = {}
    for k in ks:
        out[f"image_retrieval_recall@{k}"] = float(
            hits(scores, positives, k).float().mean()
        )
        out[f"text_retrieval_recall@{k}"] = float(
            hits(scores.T, positives.T, k).float().mean()
        )
    return out
