"""Exercise checkers for the lessons beyond the five: 06 (hard negatives), 07 (adapting).

Same contract as :mod:`cmalign.exercises`: each ``check_*`` runs the
learner's function on fresh inputs, judges it against code it does not
share (the library, autograd, the world's own ground truth, a property),
prints a pass/fail line with a hint and never raises. The answers live in
:mod:`cmalign.solutions`, which this module never imports.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from . import adapt, losses
from .exercises import _close, _run, _unit
from .toy.captions import describe
from .toy.negatives import perturb
from .toy.spec import COLORS, SHAPES


def check_negclip_loss(fn: Callable) -> bool:
    """06: CLIP's loss with hard-negative captions as extra image->text columns."""
    g = torch.Generator().manual_seed(6)
    image, text, negatives = _unit(6, 8, g), _unit(6, 8, g), _unit(4, 8, g)

    def trial() -> bool:
        ours = fn(image, text, negatives, 30.0)
        same = _close(
            ours, losses.clip_loss(image, text, 30.0, hard_negatives=negatives)
        )
        no_negatives = _close(
            fn(image, text, negatives[:0], 30.0), losses.clip_loss(image, text, 30.0)
        )
        return same and no_negatives

    return _run(
        "negclip_loss",
        "score every image against the negative captions too, with the same "
        "scale, as extra columns of the image-to-text logits only; the "
        "text-to-image cross-entropy is unchanged; average the two.",
        trial,
    )


def _random_spec(rng: np.random.Generator) -> dict:
    colors = rng.choice(list(COLORS), 2, replace=False)
    shapes = rng.choice(SHAPES, 2, replace=False)
    return {
        "objects": [
            {"color": str(c), "shape": str(s), "size": None, "position": None}
            for c, s in zip(colors, shapes)
        ],
        "relation": ("horizontal", "vertical")[rng.integers(2)],
    }


def check_swap_colors(fn: Callable) -> bool:
    """06: "a red circle to the left of a blue square" -> "a blue circle to the left of a red square"."""
    rng = np.random.default_rng(7)

    def trial() -> bool:
        for _ in range(40):
            spec = _random_spec(rng)
            text = describe(spec, rng, "forward")
            want = describe(perturb(spec, "swap_colors", rng), rng, "forward")
            if fn(text) != want:
                return False
        return True

    return _run(
        "swap_colors",
        "exchange the two colour words and leave everything else in place; "
        "mind the article: 'an orange' becomes 'a red' and back.",
        trial,
    )


def check_wise_ft(fn: Callable) -> bool:
    """07: (1 - alpha) * original + alpha * finetuned, tensor by tensor."""
    g = torch.Generator().manual_seed(8)
    a = {"w": torch.randn(3, 4, generator=g), "b": torch.randn(4, generator=g)}
    b = {k: v + torch.randn(v.shape, generator=g) for k, v in a.items()}

    def trial() -> bool:
        return all(
            all(
                _close(fn(a, b, alpha)[k], adapt.interpolate_weights(a, b, alpha)[k])
                for k in a
            )
            for alpha in (0.0, 0.3, 1.0)
        )

    return _run(
        "wise_ft",
        "alpha = 0 must give the original weights, alpha = 1 the fine-tuned ones; "
        "mix every tensor of the state dict the same way.",
        trial,
    )


def check_few_shot(fn: Callable) -> bool:
    """07: k examples of every class, each index once."""
    labels = [c for c in range(5) for _ in range(3 + 2 * c)]

    def trial() -> bool:
        for k in (1, 3):
            picked = [int(i) for i in fn(labels, k)]
            counts = np.bincount([labels[i] for i in picked], minlength=5)
            if len(set(picked)) != len(picked) or not (counts == k).all():
                return False
        return True

    return _run(
        "few_shot",
        "for each class, take k of the indices whose label is that class "
        "(not the first k indices overall).",
        trial,
    )
