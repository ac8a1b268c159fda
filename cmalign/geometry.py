"""Geometry of the shared space: the modality gap, alignment and uniformity.

* modality gap (Liang et al. 2022, "Mind the Gap"): images and texts occupy
  two separate cones; the gap is the vector between their centroids.
* alignment and uniformity (Wang & Isola 2020): positives should be close,
  and features spread evenly over the sphere.

Taught in notebooks/04_shared_space_umap.ipynb and tracked during training in
notebooks/03_training_alignment.ipynb.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .utils import check_embeddings


class ModalityGap(NamedTuple):
    """Distance between modality centroids and the gap vector (image minus text)."""

    distance: float
    vector: torch.Tensor  # (dim,)


def modality_gap(image_emb: torch.Tensor, text_emb: torch.Tensor) -> ModalityGap:
    """Euclidean distance between the image and text centroids.

    Parameters
    ----------
    image_emb : torch.Tensor of shape (n_images, dim), L2-normalised
    text_emb : torch.Tensor of shape (n_texts, dim), L2-normalised

    Returns
    -------
    ModalityGap
        ``distance`` (float) and ``vector`` = mean(image_emb) - mean(text_emb), (dim,).
    """
    image_emb = check_embeddings(image_emb, "image_emb")
    text_emb = check_embeddings(text_emb, "text_emb")
    vector = image_emb.float().mean(dim=0) - text_emb.float().mean(dim=0)
    return ModalityGap(float(vector.norm()), vector)


def shift_gap(
    image_emb: torch.Tensor,
    text_emb: torch.Tensor,
    amount: float = 1.0,
    *,
    images_only: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Move the modalities towards each other along the gap, then re-normalise.

    Both sides (default): images by ``-amount * Δ / 2``, texts by
    ``+amount * Δ / 2``; ``images_only``: images by ``-amount * Δ``, texts
    unchanged. ``amount=1`` makes the centroids meet before re-normalising.

    Returns
    -------
    (image_emb, text_emb), shapes as given, unit rows.
    """
    vector = modality_gap(image_emb, text_emb).vector
    image_step, text_step = (amount, 0.0) if images_only else (amount / 2, amount / 2)
    return (
        torch.nn.functional.normalize(image_emb.float() - image_step * vector, dim=-1),
        torch.nn.functional.normalize(text_emb.float() + text_step * vector, dim=-1),
    )


def alignment(x: torch.Tensor, y: torch.Tensor, *, alpha: float = 2.0) -> float:
    """Mean distance between positive pairs, E ||x_i - y_i||^alpha (lower is better).

    Parameters
    ----------
    x, y : torch.Tensor of shape (n, dim), L2-normalised, row i of x pairs with row i of y
    alpha : float
        Exponent (Wang & Isola use 2).
    """
    x = check_embeddings(x, "x")
    y = check_embeddings(y, "y")
    if x.shape != y.shape:
        raise ValueError(
            f"x and y must be paired: {tuple(x.shape)} vs {tuple(y.shape)}"
        )
    return float((x - y).norm(dim=1).pow(alpha).mean())


def uniformity(x: torch.Tensor, *, t: float = 2.0) -> float:
    """log E exp(-t ||x_i - x_j||^2) over distinct pairs (lower = more uniform).

    Parameters
    ----------
    x : torch.Tensor of shape (n, dim), L2-normalised, n >= 2
    t : float
        Temperature of the Gaussian potential (Wang & Isola use 2).
    """
    x = check_embeddings(x, "x")
    if len(x) < 2:
        raise ValueError("uniformity needs at least 2 points")
    squared = torch.pdist(x.float()).pow(2)
    return float(squared.mul(-t).exp().mean().log())
