"""Contrastive losses for image-text alignment: InfoNCE, CLIP's symmetric loss, SigLIP.

Conventions follow open_clip: features are L2-normalised, ``logit_scale`` is
the multiplicative inverse temperature (``model.logit_scale.exp()``, at most
100), the positives of a batch of ``n`` pairs are ``arange(n)``.
Taught in notebooks/02_contrastive_loss.ipynb; used for training in
:mod:`cmalign.train` (notebooks/03_training_alignment.ipynb).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .utils import check_embeddings

#: CLIP's initial temperature 0.07, stored as log(1 / 0.07).
LOGIT_SCALE_INIT = math.log(1 / 0.07)
#: CLIP clamps the learnable log-scale here, i.e. logit_scale <= 100.
LOGIT_SCALE_MAX = math.log(100.0)


def _pair(image_emb: torch.Tensor, text_emb: torch.Tensor) -> None:
    check_embeddings(image_emb, "image_emb")
    check_embeddings(text_emb, "text_emb")
    if image_emb.shape != text_emb.shape:
        raise ValueError(
            "image_emb and text_emb must be paired row by row with the same shape, "
            f"got {tuple(image_emb.shape)} and {tuple(text_emb.shape)}"
        )


def _scale(
    logit_scale: torch.Tensor | float, name: str = "logit_scale"
) -> torch.Tensor:
    scale = torch.as_tensor(logit_scale)
    if scale.numel() != 1 or not torch.isfinite(scale).all():
        raise ValueError(f"{name} must be one finite number, got {logit_scale!r}")
    return scale


def clamp_logit_scale_(log_scale: torch.nn.Parameter) -> torch.nn.Parameter:
    """Clamp a learnable log-scale in place to [0, ln(100)] (CLIP's rule).

    Call after every optimiser step, as open_clip's training loop does.
    """
    with torch.no_grad():
        log_scale.clamp_(0.0, LOGIT_SCALE_MAX)
    return log_scale


def info_nce(
    query_emb: torch.Tensor, key_emb: torch.Tensor, logit_scale: torch.Tensor | float
) -> torch.Tensor:
    """One-directional InfoNCE: each query must pick out its own key.

    .. math:: L = -\\frac{1}{n}\\sum_i \\log
        \\frac{e^{s\\,q_i\\cdot k_i}}{\\sum_j e^{s\\,q_i\\cdot k_j}}

    Parameters
    ----------
    query_emb : torch.Tensor of shape (n, dim), L2-normalised
    key_emb : torch.Tensor of shape (n, dim), L2-normalised; row i pairs with query i
    logit_scale : scalar tensor or float
        Inverse temperature ``s`` (already exponentiated).

    Returns
    -------
    torch.Tensor, scalar
    """
    _pair(query_emb, key_emb)
    logits = _scale(logit_scale) * query_emb @ key_emb.T  # (n, n)
    labels = torch.arange(len(logits), device=logits.device)
    return F.cross_entropy(logits, labels)


def clip_loss(
    image_emb: torch.Tensor,
    text_emb: torch.Tensor,
    logit_scale: torch.Tensor | float,
    *,
    positives: torch.Tensor | None = None,
    hard_negatives: torch.Tensor | None = None,
) -> torch.Tensor:
    """Symmetric InfoNCE of CLIP: mean of the image->text and text->image losses.

    Equals ``transformers.CLIPModel(..., return_loss=True).loss`` on the same
    features and open_clip's ``ClipLoss``.

    Parameters
    ----------
    image_emb : torch.Tensor of shape (n, dim), L2-normalised
    text_emb : torch.Tensor of shape (n, dim), L2-normalised; row i is image i's caption
    logit_scale : scalar tensor or float
        Inverse temperature (``model.logit_scale.exp()``).
    positives : torch.Tensor of shape (n, n), bool, optional
        ``positives[i, j]`` is True when text j also describes image i. Each
        row's target is then spread uniformly over its positives (soft targets),
        which helps where one caption fits several images of a batch. The
        diagonal must be True. Default: only the diagonal (labels ``arange(n)``).
        With ``hard_negatives`` it may have shape (n, n + m): column n + k says
        which images hard negative k truly describes (default: none).
    hard_negatives : torch.Tensor of shape (m, dim), L2-normalised, optional
        Extra captions that should *not* match (NegCLIP, Yuksekgonul et al.
        2023): appended as m more columns of the image->text softmax only;
        the text->image direction is unchanged. notebooks/06_hard_negatives.ipynb.

    Returns
    -------
    torch.Tensor, scalar
    """
    _pair(image_emb, text_emb)
    scale = _scale(logit_scale)
    logits_per_image = scale * image_emb @ text_emb.T  # (n_images, n_texts)
    logits_per_text = logits_per_image.T  # (n_texts, n_images)
    n = len(logits_per_image)
    m = 0
    if hard_negatives is not None:
        check_embeddings(hard_negatives, "hard_negatives")
        if hard_negatives.shape[1:] != text_emb.shape[1:]:
            raise ValueError(
                f"hard_negatives must have shape (m, {text_emb.shape[1]}), "
                f"got {tuple(hard_negatives.shape)}"
            )
        m = len(hard_negatives)
        logits_per_image = torch.cat(
            [logits_per_image, scale * image_emb @ hard_negatives.T], dim=1
        )  # (n_images, n_texts + m)
    if positives is None:
        labels = torch.arange(n, device=logits_per_image.device)
        return (
            F.cross_entropy(logits_per_image, labels)
            + F.cross_entropy(logits_per_text, labels)
        ) / 2
    positives = torch.as_tensor(positives, device=logits_per_image.device)
    if positives.dtype != torch.bool or positives.shape not in ((n, n), (n, n + m)):
        shapes = f"{(n, n)}" + (f" or {(n, n + m)}" if m else "")
        raise ValueError(f"positives must be a bool tensor of shape {shapes}")
    if not positives[:, :n].diagonal().all():
        raise ValueError("positives must include the diagonal (each pair is positive)")
    targets = positives.float()  # (n_images, n_texts [+ m])
    if targets.shape[1] < n + m:
        targets = F.pad(targets, (0, n + m - targets.shape[1]))
    image_to_text = F.cross_entropy(
        logits_per_image, targets / targets.sum(1, keepdim=True)
    )
    text_to_image = F.cross_entropy(
        logits_per_text, targets[:, :n].T / targets[:, :n].T.sum(1, keepdim=True)
    )
    return (image_to_text + text_to_image) / 2


def siglip_loss(
    image_emb: torch.Tensor,
    text_emb: torch.Tensor,
    logit_scale: torch.Tensor | float,
    logit_bias: torch.Tensor | float,
) -> torch.Tensor:
    """Sigmoid loss of SigLIP (Zhai et al. 2023): every pair is a binary decision.

    .. math:: L = -\\frac{1}{n}\\sum_{i,j}\\log\\sigma\\big(z_{ij}(s\\,x_i\\cdot y_j + b)\\big),
        \\quad z_{ij} = 1 \\text{ if } i = j \\text{ else } -1

    Parameters
    ----------
    image_emb, text_emb : torch.Tensor of shape (n, dim), L2-normalised, paired
    logit_scale : scalar
        Multiplicative scale ``s`` (SigLIP initialises it to 10).
    logit_bias : scalar
        Additive bias ``b`` (SigLIP initialises it to -10).

    Returns
    -------
    torch.Tensor, scalar (summed over pairs, averaged over images, as in the paper
    and ``transformers.SiglipModel``).
    """
    _pair(image_emb, text_emb)
    logits_per_image = _scale(logit_scale) * image_emb @ text_emb.T + _scale(
        logit_bias, "logit_bias"
    )  # (n_images, n_texts)
    n = len(logits_per_image)
    signs = (
        2 * torch.eye(n, device=logits_per_image.device, dtype=logits_per_image.dtype)
        - 1
    )
    return -F.logsigmoid(signs * logits_per_image).sum() / n
