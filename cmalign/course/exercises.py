"""Exercise checkers for every lesson, 01 to the last.

One module on purpose: the checkers share one contract and a few helpers
(``_run``, ``_unit``, ``_close``), and a teacher reads them in one place;
it passes 300 lines because each lesson adds its own checkers, not because
it mixes ideas.

Each ``check_*`` function runs the learner's function on fresh inputs and
judges it against something that does not share its code: the library
function the lesson teaches (``losses.clip_loss``, ``optim.warmup_cosine``,
``geometry.modality_gap``, ``metrics.ranks``), autograd, a brute-force loop,
or a property (invariance to feature length, unit rows). It prints a pass/fail
line with a hint in words, returns True/False and never raises, so a notebook
with an unfinished exercise still runs to the end. Reference answers live in
:mod:`cmalign.course.solutions`, which this module never imports;
``tests/test_exercises.py`` proves they pass and that typical mistakes fail.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .. import adapt, geometry, losses, metrics, optim
from ..toy.captions import describe
from ..toy.negatives import perturb
from ..toy.spec import COLORS, SHAPES


def _report(name: str, ok: bool, hint: str) -> bool:
    print(f"✅ {name}: passed" if ok else f"❌ {name}: not yet. Hint: {hint}")
    return ok


def _run(name: str, hint: str, trial: Callable[[], bool]) -> bool:
    try:
        ok = bool(trial())
    except NotImplementedError:
        return _report(name, False, "replace `raise NotImplementedError`. " + hint)
    except Exception as err:  # a learner's bug: report it, keep the notebook running
        return _report(name, False, f"it raised {type(err).__name__}: {err}. {hint}")
    return _report(name, ok, hint)


def _unit(n: int, d: int, g: torch.Generator) -> torch.Tensor:
    return F.normalize(torch.randn(n, d, generator=g), dim=-1)


def _close(a, b, atol: float = 1e-5) -> bool:
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    return a.shape == b.shape and torch.allclose(a.float(), b.float(), atol=atol)


def check_similarity_matrix(fn: Callable) -> bool:
    """01: cosine similarities (n_texts, n_images) from raw features."""
    g = torch.Generator().manual_seed(1)
    image = torch.randn(5, 8, generator=g) * 3
    text = torch.randn(4, 8, generator=g) * 0.2

    def trial() -> bool:
        out = fn(image, text)
        loop = torch.tensor(  # the definition, one pair at a time
            [[float(t @ i / (t.norm() * i.norm())) for i in image] for t in text]
        )
        stretched = fn(image * torch.arange(1.0, 6.0)[:, None], text)  # lengths change
        return _close(out, loop) and _close(stretched, loop)

    return _run(
        "similarity_matrix",
        "a cosine ignores vector length: make every row unit length first. "
        "Rows of the result are texts, columns images.",
        trial,
    )


def check_zero_shot_predict(fn: Callable) -> bool:
    """01: index of the most similar class prompt for each image."""
    g = torch.Generator().manual_seed(2)
    image, classes = _unit(20, 6, g), _unit(4, 6, g)

    def trial() -> bool:
        loop = [
            max(range(len(classes)), key=lambda c, i=i: float(image[i] @ classes[c]))
            for i in range(len(image))
        ]
        return torch.as_tensor(fn(image, classes)).tolist() == loop

    return _run(
        "zero_shot_predict",
        "score every image against every class prompt, then pick, for each "
        "image, the class with the highest score (one integer per image).",
        trial,
    )


def check_clip_loss(fn: Callable) -> bool:
    """02: the symmetric CLIP loss, judged against cmalign.losses.clip_loss."""
    g = torch.Generator().manual_seed(3)
    image, text = _unit(7, 5, g), _unit(7, 5, g)
    return _run(
        "clip_loss",
        "scale the image-text cosines; each image must pick its own caption "
        "(softmax over a row) and each caption its own image (softmax over a "
        "column); average the two mean negative log-probabilities.",
        lambda: all(
            _close(fn(image, text, s), losses.clip_loss(image, text, s))
            for s in (1.0, 20.0)
        ),
    )


def check_logits_gradient(fn: Callable) -> bool:
    """02: d(symmetric CLIP loss)/d(logits_per_image), judged against autograd."""
    g = torch.Generator().manual_seed(4)

    def trial() -> bool:
        for n in (3, 6):
            logits = torch.randn(n, n, generator=g).requires_grad_()
            loss = (
                F.cross_entropy(logits, torch.arange(n))
                + F.cross_entropy(logits.T, torch.arange(n))
            ) / 2
            (autograd,) = torch.autograd.grad(loss, logits)
            if not _close(fn(logits.detach()), autograd, atol=1e-6):
                return False
        return True

    return _run(
        "logits_gradient",
        "differentiate each direction separately (probabilities minus the "
        "target, divided by the batch size), mind which axis each softmax runs "
        "over, then average the two directions.",
        trial,
    )


def check_lr_at(fn: Callable) -> bool:
    """03: warm-up then cosine, judged against cmalign.optim.warmup_cosine."""
    cases = [
        (0, 100, 10, 1e-3),
        (9, 100, 10, 1e-3),
        (55, 100, 10, 1e-3),
        (99, 100, 10, 2.0),
    ]
    return _run(
        "lr_at",
        "during warm-up the rate grows linearly and reaches the peak at the last "
        "warm-up step; afterwards it follows half a cosine from the peak down to 0 "
        "at the end of training.",
        lambda: all(
            math.isclose(
                fn(step, total, warmup, peak),
                peak * optim.warmup_cosine(total, warmup)(step),
                rel_tol=1e-6,
                abs_tol=1e-12,
            )
            for step, total, warmup, peak in cases
        ),
    )


def check_batch_positives(fn: Callable) -> bool:
    """03: positives[i, j] = pair j shows the same image as pair i (brute force)."""
    ids = torch.tensor([3, 1, 3, 0, 1])
    loop = torch.tensor([[a == b for b in ids.tolist()] for a in ids.tolist()])
    return _run(
        "batch_positives",
        "compare every pair of image ids in the batch, including each with "
        "itself; the answer is an (n, n) table of True/False.",
        lambda: torch.equal(torch.as_tensor(fn(ids)).bool(), loop),
    )


def check_centroid_gap(fn: Callable) -> bool:
    """04: centroid distance, judged against cmalign.geometry.modality_gap."""
    g = torch.Generator().manual_seed(5)
    image, text = F.normalize(_unit(30, 4, g) + 0.5, dim=-1), _unit(20, 4, g)
    expected = geometry.modality_gap(image, text).distance
    return _run(
        "centroid_gap",
        "average each modality over its rows (the two sets may differ in size), "
        "then measure the length of the difference.",
        lambda: math.isclose(float(fn(image, text)), expected, rel_tol=1e-5),
    )


def check_close_gap(fn: Callable) -> bool:
    """04: shift both modalities halfway along the gap; properties and a loop."""
    g = torch.Generator().manual_seed(6)
    image, text = F.normalize(_unit(30, 4, g) + 0.5, dim=-1), _unit(20, 4, g)
    gap = geometry.modality_gap(image, text).vector

    def trial() -> bool:
        new_image, new_text = fn(image, text)
        unit = all(
            _close(x.norm(dim=1), torch.ones(len(x))) for x in (new_image, new_text)
        )
        rows_i = torch.stack([(u - gap / 2) / (u - gap / 2).norm() for u in image])
        rows_t = torch.stack([(v + gap / 2) / (v + gap / 2).norm() for v in text])
        return unit and _close(new_image, rows_i) and _close(new_text, rows_t)

    return _run(
        "close_gap",
        "move the images half the gap towards the texts and the texts half the "
        "gap towards the images, so their centroids meet; then put every row "
        "back on the unit sphere.",
        trial,
    )


def check_recall_at_k(fn: Callable) -> bool:
    """05: Recall@K, judged against a brute-force loop over sorted rows."""
    g = torch.Generator().manual_seed(7)
    sim = torch.randn(15, 12, generator=g)
    rel = torch.rand(15, 12, generator=g) < 0.2

    def loop(k: int) -> float:
        hits = 0
        for row, relevant in zip(sim.tolist(), rel.tolist()):
            order = sorted(range(len(row)), key=lambda j, r=row: -r[j])
            hits += any(relevant[j] for j in order[:k])
        return hits / len(sim)

    return _run(
        "recall_at_k",
        "for each query (row), look at its k highest-scoring items and ask "
        "whether any of them is relevant; average over queries.",
        lambda: all(
            math.isclose(float(fn(sim, rel, k)), loop(k), rel_tol=1e-6)
            for k in (1, 3, 5)
        ),
    )


def check_best_rank(fn: Callable) -> bool:
    """05: rank of the best relevant item, ties counted against the query;
    judged against cmalign.metrics.ranks and a hand-worked example."""
    g = torch.Generator().manual_seed(8)
    sim = torch.randint(0, 4, (10, 7), generator=g).float()  # many ties
    rel = torch.rand(10, 7, generator=g) < 0.3
    rel[:, 0] |= ~rel.any(dim=1)  # every query has a relevant item
    tie = torch.tensor([[0.9, 0.5, 0.9], [0.1, 0.2, 0.3]])
    tie_rel = torch.tensor([[True, False, False], [True, False, True]])
    return _run(
        "best_rank",
        "find each row's best relevant score; count the irrelevant items that "
        "score at least as high (a tie counts against the query) and add one, "
        "so that the best possible rank is 1.",
        lambda: (
            torch.equal(torch.as_tensor(fn(sim, rel)).long(), metrics.ranks(sim, rel))
            and torch.as_tensor(fn(tie, tie_rel)).long().tolist() == [2, 1]
        ),
    )


# ---- 06 (hard negatives) and 07 (adapting) ----


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
