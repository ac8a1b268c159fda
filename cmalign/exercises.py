"""Exercise checkers for the lessons, and their reference solutions.

Each ``check_*`` function runs the learner's function on fresh random inputs,
compares it with the reference in :class:`solutions`, and prints a pass/fail
line with a hint. It returns True/False and never raises, so a notebook with
an unfinished exercise still runs to the end. ``tests/test_exercises.py``
proves every reference solution passes its checker (and that wrong answers fail).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from . import losses, metrics


class solutions:  # noqa: N801 - a namespace, read as cmalign.exercises.solutions.x
    """Reference solutions, one per exercise."""

    @staticmethod
    def similarity_matrix(
        image_features: torch.Tensor, text_features: torch.Tensor
    ) -> torch.Tensor:
        """01: cosine similarities (n_texts, n_images) from raw, unnormalised features."""
        image = F.normalize(image_features, dim=-1)
        text = F.normalize(text_features, dim=-1)
        return text @ image.T

    @staticmethod
    def zero_shot_predict(
        image_emb: torch.Tensor, class_emb: torch.Tensor
    ) -> torch.Tensor:
        """01: index of the most similar class prompt for each image, (n_images,)."""
        return (image_emb @ class_emb.T).argmax(dim=1)

    @staticmethod
    def clip_loss(
        image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: float
    ) -> torch.Tensor:
        """02: symmetric InfoNCE, written with log-softmax."""
        logits = logit_scale * image_emb @ text_emb.T
        image_to_text = -torch.log_softmax(logits, dim=1).diagonal().mean()
        text_to_image = -torch.log_softmax(logits, dim=0).diagonal().mean()
        return (image_to_text + text_to_image) / 2

    @staticmethod
    def logits_gradient(logits: torch.Tensor) -> torch.Tensor:
        """02: d(clip loss)/d(logits) by hand: (softmax rows + softmax cols - 2I) / 2n."""
        n = len(logits)
        eye = torch.eye(n, dtype=logits.dtype)
        return (torch.softmax(logits, 1) + torch.softmax(logits, 0) - 2 * eye) / (2 * n)

    @staticmethod
    def lr_at(step: int, total: int, warmup: int, peak: float) -> float:
        """03: linear warm-up to ``peak`` over ``warmup`` steps, then cosine to 0."""
        if step < warmup:
            return peak * (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return peak * 0.5 * (1 + math.cos(math.pi * progress))

    @staticmethod
    def batch_positives(image_ids: torch.Tensor) -> torch.Tensor:
        """03: positives[i, j] = caption j's image is image i's image (duplicates count)."""
        return image_ids[:, None] == image_ids[None, :]

    @staticmethod
    def centroid_gap(image_emb: torch.Tensor, text_emb: torch.Tensor) -> float:
        """04: distance between the mean image and the mean text embedding."""
        return float((image_emb.mean(0) - text_emb.mean(0)).norm())

    @staticmethod
    def close_gap(
        image_emb: torch.Tensor, text_emb: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """04: move both modalities halfway along the gap, then re-normalise."""
        gap = image_emb.mean(0) - text_emb.mean(0)
        return F.normalize(image_emb - gap / 2, dim=-1), F.normalize(
            text_emb + gap / 2, dim=-1
        )

    @staticmethod
    def recall_at_k(similarity: torch.Tensor, relevance: torch.Tensor, k: int) -> float:
        """05: fraction of queries with a relevant item in their top k."""
        top = similarity.topk(k, dim=1).indices
        return float(relevance.gather(1, top).any(dim=1).float().mean())

    @staticmethod
    def best_rank(similarity: torch.Tensor, relevance: torch.Tensor) -> torch.Tensor:
        """05: 1-based rank of the best relevant item (ties counted against)."""
        return metrics.ranks(similarity, relevance)


def _report(name: str, ok: bool, hint: str) -> bool:
    print(f"✅ {name}: passed" if ok else f"❌ {name}: not yet. Hint: {hint}")
    return ok


def _run(name: str, hint: str, trial: Callable[[], bool]) -> bool:
    try:
        ok = bool(trial())
    except NotImplementedError:
        return _report(
            name,
            False,
            "fill in the function (it still raises NotImplementedError). " + hint,
        )
    except Exception as err:  # a learner's bug: report it, keep the notebook running
        return _report(name, False, f"it raised {type(err).__name__}: {err}. {hint}")
    return _report(name, ok, hint)


def _unit(n: int, d: int, g: torch.Generator) -> torch.Tensor:
    return F.normalize(torch.randn(n, d, generator=g), dim=-1)


def _close(a, b, atol: float = 1e-5) -> bool:
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    return a.shape == b.shape and torch.allclose(a.float(), b.float(), atol=atol)


def check_similarity_matrix(fn: Callable) -> bool:
    g = torch.Generator().manual_seed(1)
    image, text = (
        torch.randn(5, 8, generator=g) * 3,
        torch.randn(4, 8, generator=g) * 0.2,
    )
    return _run(
        "similarity_matrix",
        "normalise both feature sets (F.normalize(x, dim=-1)) "
        "and return texts @ images.T, shape (n_texts, n_images).",
        lambda: _close(fn(image, text), solutions.similarity_matrix(image, text)),
    )


def check_zero_shot_predict(fn: Callable) -> bool:
    g = torch.Generator().manual_seed(2)
    image, classes = _unit(20, 6, g), _unit(4, 6, g)
    return _run(
        "zero_shot_predict",
        "score each image against each class prompt "
        "(image_emb @ class_emb.T) and take argmax over classes.",
        lambda: torch.equal(
            torch.as_tensor(fn(image, classes)),
            solutions.zero_shot_predict(image, classes),
        ),
    )


def check_clip_loss(fn: Callable) -> bool:
    g = torch.Generator().manual_seed(3)
    image, text = _unit(7, 5, g), _unit(7, 5, g)
    return _run(
        "clip_loss",
        "logits = scale * image @ text.T; average the cross-entropy "
        "over rows (image->text) and over columns (text->image), target = diagonal.",
        lambda: _close(fn(image, text, 20.0), losses.clip_loss(image, text, 20.0)),
    )


def check_logits_gradient(fn: Callable) -> bool:
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(6, 6, generator=g).requires_grad_()
    image_loss = F.cross_entropy(logits, torch.arange(6))
    text_loss = F.cross_entropy(logits.T, torch.arange(6))
    (autograd,) = torch.autograd.grad((image_loss + text_loss) / 2, logits)
    return _run(
        "logits_gradient",
        "each direction gives (softmax - one_hot) / n: rows use "
        "softmax over dim 1, the text direction softmax over dim 0; average the two.",
        lambda: _close(fn(logits.detach()), autograd, atol=1e-6),
    )


def check_lr_at(fn: Callable) -> bool:
    cases = [
        (0, 100, 10, 1e-3),
        (9, 100, 10, 1e-3),
        (55, 100, 10, 1e-3),
        (99, 100, 10, 2.0),
    ]
    return _run(
        "lr_at",
        "step < warmup: peak * (step + 1) / warmup; afterwards "
        "peak * 0.5 * (1 + cos(pi * progress)) with progress from 0 to 1.",
        lambda: all(
            math.isclose(fn(*c), solutions.lr_at(*c), rel_tol=1e-6, abs_tol=1e-12)
            for c in cases
        ),
    )


def check_batch_positives(fn: Callable) -> bool:
    ids = torch.tensor([3, 1, 3, 0, 1])
    return _run(
        "batch_positives",
        "compare every pair of image ids with broadcasting: "
        "ids[:, None] == ids[None, :]; the result is a bool (n, n) matrix.",
        lambda: torch.equal(torch.as_tensor(fn(ids)), solutions.batch_positives(ids)),
    )


def check_centroid_gap(fn: Callable) -> bool:
    g = torch.Generator().manual_seed(5)
    image, text = _unit(30, 4, g) + 0.5, _unit(20, 4, g)
    image = F.normalize(image, dim=-1)
    return _run(
        "centroid_gap",
        "mean over rows for each modality, then the Euclidean norm of the difference.",
        lambda: math.isclose(
            float(fn(image, text)), solutions.centroid_gap(image, text), rel_tol=1e-5
        ),
    )


def check_close_gap(fn: Callable) -> bool:
    g = torch.Generator().manual_seed(6)
    image, text = F.normalize(_unit(30, 4, g) + 0.5, dim=-1), _unit(20, 4, g)
    return _run(
        "close_gap",
        "subtract half the gap vector from the images, add it to the "
        "texts, and re-normalise rows so they lie on the sphere again.",
        lambda: all(
            _close(a, b)
            for a, b in zip(fn(image, text), solutions.close_gap(image, text))
        ),
    )


def check_recall_at_k(fn: Callable) -> bool:
    g = torch.Generator().manual_seed(7)
    sim = torch.randn(15, 12, generator=g)
    rel = torch.rand(15, 12, generator=g) < 0.2
    return _run(
        "recall_at_k",
        "take the indices of the top-k scores per row "
        "(sim.topk(k, dim=1).indices) and ask whether any of them is relevant.",
        lambda: all(
            math.isclose(float(fn(sim, rel, k)), solutions.recall_at_k(sim, rel, k))
            for k in (1, 3, 5)
        ),
    )


def check_best_rank(fn: Callable) -> bool:
    sim = torch.tensor([[0.9, 0.5, 0.9], [0.1, 0.2, 0.3]])
    rel = torch.tensor([[True, False, False], [True, False, True]])
    return _run(
        "best_rank",
        "find the best relevant score per row, then count the "
        "irrelevant items scoring at least as high (ties count against) and add 1.",
        lambda: torch.equal(
            torch.as_tensor(fn(sim, rel)).long(), solutions.best_rank(sim, rel)
        ),
    )
