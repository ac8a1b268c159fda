"""Generation guided by the shared space: change an image until a frozen CLIP
scores it high for a prompt, or pick the best of N candidates.

The objective is the cosine between the image's and the prompt's embeddings,
``cos(f(x), g(t))``, maximised over ``x`` with the model frozen. What ``x`` is
decides what comes out: free pixels (an adversarial pattern that scores high
and shows nothing), or the parameters of a drawing
(:mod:`cmalign.toy.soft_draw`; CLIPDraw, Frans et al. 2022), scored through
random augmentations of the image as CLIPDraw and VQGAN+CLIP (Crowson et al.
2022) do, so that the score cannot rest on a few exact pixel values.
:func:`best_of_n` is the search alternative: score N ready-made images and keep
the best. Taught in notebooks/09_generation.ipynb.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from .features import image_features
from .models import ClipBundle


def model_input(bundle: ClipBundle, images: torch.Tensor) -> torch.Tensor:
    """Normalise images the way the bundle's processor does, differentiably.

    Parameters
    ----------
    images : torch.Tensor of shape (n, 3, H, W), RGB values in [0, 1], already
        at the model's input size (no resizing or cropping is done).

    Returns
    -------
    torch.Tensor of shape (n, 3, H, W): ``(images - mean) / std`` per channel.
    """
    processor = bundle.processor.image_processor
    mean = torch.tensor(processor.image_mean, dtype=images.dtype, device=images.device)
    std = torch.tensor(processor.image_std, dtype=images.dtype, device=images.device)
    return (images - mean[:, None, None]) / std[:, None, None]


def augment(
    images: torch.Tensor,
    *,
    n_copies: int,
    max_shift: float = 0.1,
    max_zoom: float = 0.2,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Randomly shifted and zoomed copies of each image (differentiable).

    A small stand-in for CLIPDraw's random perspective and crops: each copy is
    resampled with its own shift (up to ``max_shift`` of the image side in
    each direction) and zoom (by up to ``1 ± max_zoom``); borders repeat the
    edge pixels.

    Parameters
    ----------
    images : torch.Tensor of shape (n, 3, H, W)

    Returns
    -------
    torch.Tensor of shape (n_copies * n, 3, H, W): copy c of image i at row
    ``c * n + i``.
    """
    if n_copies < 1:
        raise ValueError(f"n_copies must be >= 1, got {n_copies}")
    n, _, h, w = images.shape
    m = n_copies * n
    zoom = 1 + max_zoom * (2 * torch.rand(m, generator=generator) - 1)
    shift = max_shift * (2 * torch.rand(m, 2, generator=generator) - 1)
    theta = torch.zeros(m, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / zoom
    theta[:, 0, 2], theta[:, 1, 2] = 2 * shift[:, 0], 2 * shift[:, 1]
    grid = F.affine_grid(theta.to(images), [m, 3, h, w], align_corners=False)
    return F.grid_sample(
        images.repeat(n_copies, 1, 1, 1),
        grid,
        padding_mode="border",
        align_corners=False,
    )


def clip_scores(
    bundle: ClipBundle, images: torch.Tensor, text_emb: torch.Tensor
) -> torch.Tensor:
    """Cosine of each image with its own prompt, with gradient.

    Parameters
    ----------
    images : torch.Tensor of shape (n, 3, H, W), values in [0, 1]
    text_emb : torch.Tensor of shape (n, dim) or (m, dim) with n a multiple of m
        Unit rows; image i is scored against prompt ``i % m``.

    Returns
    -------
    torch.Tensor of shape (n,)
    """
    image_emb = image_features(bundle.model, model_input(bundle, images))
    prompts = text_emb.to(image_emb).repeat(len(images) // len(text_emb), 1)
    if len(prompts) != len(images):
        raise ValueError(
            f"{len(images)} images do not split over {len(text_emb)} prompts"
        )
    return (image_emb * prompts).sum(-1)


def optimise(
    bundle: ClipBundle,
    render: Callable[[float], torch.Tensor],
    tensors: Sequence[torch.Tensor],
    text_emb: torch.Tensor,
    *,
    steps: int,
    lr: float,
    n_copies: int = 0,
    generator: torch.Generator | None = None,
) -> list[float]:
    """Raise the CLIP score of ``render(t)`` for ``text_emb`` by Adam on ``tensors``.

    Parameters
    ----------
    render : callable
        ``render(t)`` returns images (n, 3, H, W) in [0, 1] made from
        ``tensors``; ``t = step / steps`` goes from 0 to 1 (for schedules,
        e.g. edges that start blurred and sharpen).
    tensors : the leaves to change (``requires_grad=True``); changed in place
    text_emb : torch.Tensor of shape (n, dim), unit rows, one prompt per image
    n_copies : int
        0: score the image itself; k >= 1: score k augmented copies
        (:func:`augment`) and average.

    Returns
    -------
    list of float: the objective before each step (the mean score of what was
    scored: the augmented copies when ``n_copies`` >= 1).
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    was = [p.requires_grad for p in bundle.model.parameters()]
    bundle.model.requires_grad_(False)  # the model stays frozen; saves its gradients
    opt = torch.optim.Adam(list(tensors), lr=lr)
    history = []
    try:
        for step in range(steps):
            images = render(step / steps)
            seen = (
                images
                if n_copies == 0
                else augment(images, n_copies=n_copies, generator=generator)
            )
            scores = clip_scores(bundle, seen, text_emb)
            history.append(float(scores.detach().mean()))
            opt.zero_grad()
            (-scores.mean()).backward()
            opt.step()
    finally:
        for p, flag in zip(bundle.model.parameters(), was):
            p.requires_grad_(flag)
    return history


def best_of_n(
    image_emb: torch.Tensor, text_emb: torch.Tensor, *, n: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """For each prompt, the best-scoring of the first ``n`` candidate images.

    Parameters
    ----------
    image_emb : torch.Tensor of shape (n_images, dim), unit rows
    text_emb : torch.Tensor of shape (n_prompts, dim), unit rows
    n : int, optional
        Candidates to consider (default: all).

    Returns
    -------
    (index, score): tensors of shape (n_prompts,), the chosen image and its cosine.
    """
    n = len(image_emb) if n is None else n
    if not 1 <= n <= len(image_emb):
        raise ValueError(f"n must be in 1..{len(image_emb)}, got {n}")
    scores = text_emb @ image_emb[:n].T  # (n_prompts, n)
    best = scores.max(dim=1)
    return best.indices, best.values
