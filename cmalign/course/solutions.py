"""Reference answers to the lessons' exercises. Try them yourself first!

One function per exercise, named as in the lesson. The checkers in
:mod:`cmalign.exercises` never import this module: they judge an answer
against the library, autograd, a brute-force loop or a property, and
``tests/test_exercises.py`` proves that each answer here passes and that
typical mistakes fail.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def similarity_matrix(
    image_features: torch.Tensor, text_features: torch.Tensor
) -> torch.Tensor:
    """01: cosine similarities (n_texts, n_images) from raw, unnormalised features."""
    image = F.normalize(image_features, dim=-1)
    text = F.normalize(text_features, dim=-1)
    return text @ image.T


def zero_shot_predict(image_emb: torch.Tensor, class_emb: torch.Tensor) -> torch.Tensor:
    """01: index of the most similar class prompt for each image, (n_images,)."""
    return (image_emb @ class_emb.T).argmax(dim=1)


def clip_loss(
    image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: float
) -> torch.Tensor:
    """02: symmetric InfoNCE, written with log-softmax."""
    logits_per_image = logit_scale * image_emb @ text_emb.T  # (n_images, n_texts)
    image_to_text = -torch.log_softmax(logits_per_image, dim=1).diagonal().mean()
    text_to_image = -torch.log_softmax(logits_per_image, dim=0).diagonal().mean()
    return (image_to_text + text_to_image) / 2


def logits_gradient(logits: torch.Tensor) -> torch.Tensor:
    """02: d(clip loss)/d(logits) by hand: (softmax rows + softmax cols - 2I) / 2n."""
    n = len(logits)
    eye = torch.eye(n, dtype=logits.dtype)
    return (torch.softmax(logits, 1) + torch.softmax(logits, 0) - 2 * eye) / (2 * n)


def lr_at(step: int, total: int, warmup: int, peak: float) -> float:
    """03: linear warm-up to ``peak`` over ``warmup`` steps, then cosine to 0."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * 0.5 * (1 + math.cos(math.pi * progress))


def batch_positives(image_ids: torch.Tensor) -> torch.Tensor:
    """03: positives[i, j] = caption j's image is image i's image (duplicates count)."""
    return image_ids[:, None] == image_ids[None, :]


def centroid_gap(image_emb: torch.Tensor, text_emb: torch.Tensor) -> float:
    """04: distance between the mean image and the mean text embedding."""
    return float((image_emb.mean(0) - text_emb.mean(0)).norm())


def close_gap(
    image_emb: torch.Tensor, text_emb: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """04: move both modalities halfway along the gap, then re-normalise."""
    gap = image_emb.mean(0) - text_emb.mean(0)
    return F.normalize(image_emb - gap / 2, dim=-1), F.normalize(
        text_emb + gap / 2, dim=-1
    )


def recall_at_k(similarity: torch.Tensor, relevance: torch.Tensor, k: int) -> float:
    """05: fraction of queries with a relevant item in their top k."""
    top = similarity.topk(k, dim=1).indices
    return float(relevance.gather(1, top).any(dim=1).float().mean())


def best_rank(similarity: torch.Tensor, relevance: torch.Tensor) -> torch.Tensor:
    """05: 1-based rank of the best relevant item (ties counted against)."""
    best = similarity.masked_fill(~relevance, float("-inf")).max(dim=1).values
    return ((similarity >= best[:, None]) & ~relevance).sum(dim=1) + 1


def negclip_loss(
    image_emb: torch.Tensor,
    text_emb: torch.Tensor,
    negative_emb: torch.Tensor,
    scale: float,
) -> torch.Tensor:
    n = len(image_emb)
    labels = torch.arange(n)
    logits_per_image = (
        scale * image_emb @ torch.cat([text_emb, negative_emb]).T
    )  # (n, n+m)
    logits_per_text = scale * text_emb @ image_emb.T  # (n, n)
    return (
        F.cross_entropy(logits_per_image, labels)
        + F.cross_entropy(logits_per_text, labels)
    ) / 2


def swap_colors(caption: str) -> str:
    colors = ["red", "orange", "yellow", "green", "cyan", "blue", "purple", "white"]
    words = caption.split()
    where = [i for i, w in enumerate(words) if w in colors]
    first, second = where
    words[first], words[second] = words[second], words[first]
    for i in (first - 1, second - 1):  # the article before each colour
        words[i] = "an" if words[i + 1][0] in "aeiou" else "a"
    return " ".join(words)


def wise_ft(original: dict, finetuned: dict, alpha: float) -> dict:
    return {k: (1 - alpha) * v + alpha * finetuned[k] for k, v in original.items()}


def few_shot(labels: list[int], k: int) -> list[int]:
    picked = []
    for c in sorted(set(labels)):
        picked += [i for i, y in enumerate(labels) if y == c][:k]
    return picked
