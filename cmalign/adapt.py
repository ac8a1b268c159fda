"""Adapting a pretrained CLIP to a new task: few-shot linear probes and WiSE-FT.

The recipe of notebooks/07_adapting_clip.ipynb, written to run the same on
the toy world and on a user's caption folder with a hub model:

- :func:`few_shot_indices` picks k labelled examples per class;
- :func:`fit_linear_probe` trains a logistic-regression head on frozen image
  features (scikit-learn), as the CLIP paper's linear-probe evaluation does;
- fine-tuning itself is :func:`cmalign.train.fit` (``train_only=[...]`` for the
  projections only);
- :func:`interpolate_weights` mixes the original and the fine-tuned weights:
  ``(1 - alpha) * original + alpha * finetuned`` (WiSE-FT, Wortsman et al.
  2022, for robustness under distribution shift; PAINT, Ilharco et al. 2022,
  for keeping the original task while adding a new one);
- :func:`choose_alpha` picks the mixing weight on *validation* scores (the
  best average of the two tasks, or the best new-task score that keeps the
  original task within a stated drop), so the test sets are used once, to
  report.

Split a caption folder with :func:`cmalign.data.split_by_image` first, so that
no image is both trained on and tested on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from .utils import check_embeddings


def few_shot_indices(labels: Sequence[int], shots: int, seed: int = 0) -> list[int]:
    """``shots`` indices per class, drawn at random without replacement.

    Raises
    ------
    ValueError
        When a class has fewer than ``shots`` examples (naming the class).
    """
    if shots < 1:
        raise ValueError(f"shots must be >= 1, got {shots}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    picked = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if len(members) < shots:
            raise ValueError(
                f"class {c} has {len(members)} examples, fewer than shots={shots}"
            )
        picked += rng.choice(members, shots, replace=False).tolist()
    return sorted(picked)


def fit_linear_probe(
    image_emb: torch.Tensor, labels: Sequence[int], c: float = 10.0, seed: int = 0
) -> LogisticRegression:
    """A multinomial logistic-regression head on frozen, L2-normalised features.

    Parameters
    ----------
    image_emb : torch.Tensor of shape (n_images, dim), L2-normalised
    labels : sequence of int of length n_images
    c : float
        Inverse L2 regularisation strength (scikit-learn's ``C``). The CLIP paper
        tunes it on a validation split; with 1 to 16 shots there is none, so a
        fixed value is used and stated.

    Returns
    -------
    sklearn.linear_model.LogisticRegression
        ``.predict(image_emb.numpy())`` gives class indices.
    """
    image_emb = check_embeddings(image_emb, "image_emb")
    labels = np.asarray(labels)
    if len(labels) != len(image_emb):
        raise ValueError(f"{len(labels)} labels for {len(image_emb)} images")
    probe = LogisticRegression(C=c, max_iter=2000, random_state=seed)
    return probe.fit(image_emb.float().numpy(), labels)


def interpolate_weights(
    original: dict[str, torch.Tensor],
    finetuned: dict[str, torch.Tensor],
    alpha: float,
) -> dict[str, torch.Tensor]:
    """WiSE-FT: ``(1 - alpha) * original + alpha * finetuned``, tensor by tensor.

    Parameters
    ----------
    original, finetuned : state dicts of the same architecture
        (``model.state_dict()`` before and after fine-tuning).
    alpha : float in [0, 1]
        0 gives the original model, 1 the fine-tuned one.

    Returns
    -------
    dict
        A state dict for ``model.load_state_dict``. Integer buffers (such as
        position ids) are taken from ``original``.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if original.keys() != finetuned.keys():
        differ = sorted(set(original) ^ set(finetuned))
        raise ValueError(f"the state dicts differ in keys, e.g. {differ[:3]}")
    mixed = {}
    for name, theta0 in original.items():
        theta1 = finetuned[name]
        if theta0.shape != theta1.shape:
            raise ValueError(
                f"{name}: shapes {tuple(theta0.shape)} and {tuple(theta1.shape)} differ"
            )
        if theta0.is_floating_point():
            mixed[name] = torch.lerp(theta0, theta1.to(theta0.dtype), alpha)
        else:
            mixed[name] = theta0.clone()
    return mixed


def choose_alpha(
    alphas: Sequence[float],
    new_task: Sequence[float],
    original_task: Sequence[float],
    *,
    max_drop: float | None = None,
) -> float:
    """The mixing weight to report, chosen on validation scores.

    Parameters
    ----------
    alphas : sequence of float, increasing, starting at 0 (the original model)
        The mixing weights tried, e.g. ``numpy.linspace(0, 1, 6)``.
    new_task, original_task : sequences of float, one per alpha
        *Validation* scores of each interpolated model on the new task and on
        the original one (higher is better, on comparable scales such as
        accuracy and Recall@1). Never pass test scores: the test sets only
        report the chosen model.
    max_drop : float, optional
        None: the alpha with the best average of the two scores (the
        criterion PAINT, Ilharco et al. 2022, tunes its mixing weight with).
        A number: the alpha with the best new-task score among those whose
        original-task score is at most ``max_drop`` below that of
        ``alphas[0]`` (the original model) — "gain what you can without
        losing more than this", as PAINT reports ImageNet kept within one
        point.

    Returns
    -------
    float
        The chosen alpha; on a tie (equal up to float rounding) the smallest,
        the model closest to the original.
    """
    if not len(alphas) == len(new_task) == len(original_task) > 0:
        raise ValueError(
            f"one score per alpha: {len(alphas)} alphas, {len(new_task)} new-task "
            f"and {len(original_task)} original-task scores"
        )
    if list(alphas) != sorted(alphas) or alphas[0] != 0:
        raise ValueError(
            f"alphas must increase from 0 (the original model), got {alphas}"
        )
    if max_drop is None:
        score = [(a + b) / 2 for a, b in zip(new_task, original_task)]
        allowed = list(range(len(alphas)))
    else:
        floor = original_task[0] - max_drop
        allowed = [i for i, old in enumerate(original_task) if old >= floor - 1e-12]
        score = list(new_task)
    best = max(score[i] for i in allowed)
    return float(min(alphas[i] for i in allowed if score[i] >= best - 1e-12))
