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
* a tie is two scores within ``tie_tolerance`` (:data:`TIE_TOLERANCE` = 1e-6,
  relative above 1), not exact equality: one caption embedded in differently
  padded batches comes out a few float32 steps apart (measured: up to 1.2e-7
  in cosine with the toy CLIP, 3.6e-7 with ViT-B/32's text tower; a step at
  1.0 is 1.19e-7). 1e-6 is ~3x that and far below the gaps between different
  items (0.02 % of neighbouring scores on the toy test split). 0 = exact.
  bf16 embeddings differ by ~1e-3 between batches: deduplicate those instead.

Taught in notebooks/05_retrieval_evaluation.ipynb.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .utils import check_embeddings

#: Scores closer than this (times max(1, |score|)) count as tied; see the module docstring.
TIE_TOLERANCE = 1e-6


class NoRelevantItemError(ValueError):
    """A query has no relevant item, so its rank is undefined; ``.row`` names it."""

    def __init__(self, row: int, *, direction: str | None = None):
        where = f"{direction}: " if direction else ""
        super().__init__(f"{where}query {row} has no relevant item; its rank is undefined")
        self.row = row
        self.direction = direction


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


def ranks(
    similarity: torch.Tensor,
    relevance: torch.Tensor,
    tie_tolerance: float = TIE_TOLERANCE,
) -> torch.Tensor:
    """Rank of the best relevant item for each query (1 = best, ties pessimistic).

    Parameters
    ----------
    similarity : torch.Tensor of shape (n_queries, n_items)
    relevance : torch.Tensor of shape (n_queries, n_items), bool
    tie_tolerance : float
        Irrelevant items within it of the best relevant score tie it and count
        against the query (:func:`scores_tie`; 0: exact; see the module docstring).

    Returns
    -------
    torch.Tensor of shape (n_queries,), int64
    """
    if similarity.shape != relevance.shape:
        raise ValueError(
            f"shapes differ: {tuple(similarity.shape)} vs {tuple(relevance.shape)}"
        )
    return _ranks_and_ties(similarity, relevance, tie_tolerance)[0]


def scores_tie(
    a: torch.Tensor, b: torch.Tensor, tie_tolerance: float = TIE_TOLERANCE
) -> torch.Tensor:
    """Elementwise ``|a - b| <= tie_tolerance * max(1, |a|, |b|)``: equal up to
    float rounding, the rule :func:`ranks` and the word-order probes use."""
    if tie_tolerance < 0:
        raise ValueError(f"tie_tolerance must be >= 0, got {tie_tolerance}")
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    size = torch.maximum(a.abs(), b.abs()).clamp(min=1.0)
    return (a - b).abs() <= tie_tolerance * size


def _ranks_and_ties(
    similarity: torch.Tensor,
    relevance: torch.Tensor,
    tie_tolerance: float = TIE_TOLERANCE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pessimistic ranks (n,), and whether an irrelevant item ties the best relevant."""
    has_any = relevance.any(dim=1)
    if not has_any.all():
        raise NoRelevantItemError(int((~has_any).nonzero()[0]))
    best_relevant = similarity.masked_fill(~relevance, float("-inf")).max(dim=1).values
    best = best_relevant[:, None]
    tied = scores_tie(similarity, best, tie_tolerance) & ~relevance
    beaten = (similarity > best) & ~relevance & ~tied
    return beaten.sum(dim=1) + tied.sum(dim=1) + 1, tied.any(dim=1)


def _chunked(
    queries: torch.Tensor,
    items: torch.Tensor,
    relevance_rows,
    chunk_size: int,
    direction: str,
    tie_tolerance: float = TIE_TOLERANCE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ranks and tie flags of every query, ``chunk_size`` queries at a time, so
    memory stays about chunk_size * n_items (never n_queries * n_items)."""
    out_ranks, out_ties = [], []
    items = items.float()
    for start in range(0, len(queries), chunk_size):
        sim = queries[start : start + chunk_size].float() @ items.T
        try:
            rows = relevance_rows(start, start + len(sim))
            r, t = _ranks_and_ties(sim, rows, tie_tolerance)
        except NoRelevantItemError as err:
            raise NoRelevantItemError(start + err.row, direction=direction) from None
        out_ranks.append(r)
        out_ties.append(t)
    return torch.cat(out_ranks), torch.cat(out_ties)


def rank_summary(prefix: str, r: torch.Tensor, ks: Sequence[int]) -> dict[str, float]:
    """``{prefix}_R@K`` for each K, ``_mean_rank``, ``_median_rank``, ``_mrr`` of ranks ``r`` (n,)."""
    out = {f"{prefix}_R@{k}": float((r <= k).float().mean()) for k in ks}
    out[f"{prefix}_mean_rank"] = float(r.float().mean())
    out[f"{prefix}_median_rank"] = float(r.float().quantile(0.5))  # mean of middle two
    out[f"{prefix}_mrr"] = float((1.0 / r.float()).mean())
    return out


def retrieval_ranks(
    image_emb: torch.Tensor,
    text_emb: torch.Tensor,
    text_to_image: Sequence[int] | None = None,
    relevance: torch.Tensor | None = None,
    chunk_size: int = 1024,
    tie_tolerance: float = TIE_TOLERANCE,
) -> dict[str, torch.Tensor]:
    """Every query's rank both ways, and which queries had a tie, in chunks.

    Arguments as in :func:`retrieval_metrics`. Similarities are computed
    ``chunk_size`` queries at a time (25,000 captions x 5,000 images never
    builds the full matrix); with ``text_to_image`` no relevance matrix is built
    either.

    Returns
    -------
    dict of torch.Tensor
        ``text_to_image`` (n_texts,) and ``image_to_text`` (n_images,) ranks
        (1 = best, ties pessimistic); ``text_to_image_tied`` and
        ``image_to_text_tied``, bool, True where an irrelevant item scored
        as high as the best relevant one, up to ``tie_tolerance``.
    """
    image_emb = check_embeddings(image_emb, "image_emb")
    text_emb = check_embeddings(text_emb, "text_emb")
    if (text_to_image is None) == (relevance is None):
        raise ValueError("give exactly one of text_to_image and relevance")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    n_texts, n_images = len(text_emb), len(image_emb)
    if relevance is None:
        if len(text_to_image) != n_texts:
            raise ValueError(
                f"text_to_image has {len(text_to_image)} entries for {n_texts} texts"
            )
        owner = relevance_from_index(text_to_image, n_images).int().argmax(1)

        def text_rows(a: int, b: int) -> torch.Tensor:
            rows = torch.zeros(b - a, n_images, dtype=torch.bool)
            rows[torch.arange(b - a), owner[a:b]] = True
            return rows

        def image_rows(a: int, b: int) -> torch.Tensor:
            return owner[None, :] == torch.arange(a, b)[:, None]

    else:
        relevance = torch.as_tensor(relevance, dtype=torch.bool)
        if relevance.shape != (n_texts, n_images):
            raise ValueError(
                f"relevance must have shape (n_texts, n_images) = "
                f"{(n_texts, n_images)}, got {tuple(relevance.shape)}"
            )

        def text_rows(a: int, b: int) -> torch.Tensor:
            return relevance[a:b]

        def image_rows(a: int, b: int) -> torch.Tensor:
            return relevance[:, a:b].T

    # logits_per_text / logits_per_image in open_clip's names, chunk by chunk;
    # the scale is left out (ranks do not depend on it).
    t2i, t2i_tied = _chunked(
        text_emb,
        image_emb,
        text_rows,
        chunk_size,
        "text->image (text index)",
        tie_tolerance,
    )
    i2t, i2t_tied = _chunked(
        image_emb,
        text_emb,
        image_rows,
        chunk_size,
        "image->text (image index; it has no caption)",
        tie_tolerance,
    )
    return {
        "text_to_image": t2i,
        "image_to_text": i2t,
        "text_to_image_tied": t2i_tied,
        "image_to_text_tied": i2t_tied,
    }


def retrieval_metrics(
    image_emb: torch.Tensor,
    text_emb: torch.Tensor,
    text_to_image: Sequence[int] | None = None,
    ks: Sequence[int] = (1, 5, 10),
    relevance: torch.Tensor | None = None,
    chunk_size: int = 1024,
    tie_tolerance: float = TIE_TOLERANCE,
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
    chunk_size : int
        Queries scored at a time (see :func:`retrieval_ranks`).
    tie_tolerance : float
        Scores this close count as tied (see the module docstring; 0: exact).

    Returns
    -------
    dict
        ``text_to_image_R@K``, ``image_to_text_R@K``, ``*_mean_rank``,
        ``*_median_rank``, ``*_mrr``. An image->text query is a hit when any of
        its captions is in the top K (see module docstring for ties).
    """
    if not all(isinstance(k, int) and k >= 1 for k in ks):
        raise ValueError(f"ks must be positive ints, got {ks}")
    r = retrieval_ranks(
        image_emb, text_emb, text_to_image, relevance, chunk_size, tie_tolerance
    )
    return {
        **rank_summary("text_to_image", r["text_to_image"], ks),
        **rank_summary("image_to_text", r["image_to_text"], ks),
    }


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
