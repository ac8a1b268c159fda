"""Every reference answer passes its checker; typical mistakes fail it.

The checkers (cmalign.course.exercises) never import the answers (cmalign.course.solutions),
so these tests would fail if an answer were wrong: each checker judges
against the library, autograd, a brute-force loop or a property.
"""

import ast
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from cmalign.course import exercises, solutions

NAMES = [
    "similarity_matrix",
    "zero_shot_predict",
    "clip_loss",
    "logits_gradient",
    "lr_at",
    "batch_positives",
    "centroid_gap",
    "close_gap",
    "recall_at_k",
    "best_rank",
    "negclip_loss",
    "swap_colors",
    "wise_ft",
    "few_shot",
]


def check(name, fn):
    return getattr(exercises, f"check_{name}")(fn)


@pytest.mark.parametrize("name", NAMES)
def test_reference_answers_pass(name, capsys):
    assert check(name, getattr(solutions, name)) is True
    assert "passed" in capsys.readouterr().out


def test_the_checkers_never_see_the_answers():
    tree = ast.parse(Path(exercises.__file__).read_text())
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom | ast.Import)
        for alias in node.names
    }
    assert not {"solutions", "cmalign.course.solutions"} & imported


@pytest.mark.parametrize("name", NAMES)
def test_unfinished_answers_fail_with_a_hint_in_words(name, capsys):
    def unfinished(*args):
        raise NotImplementedError

    assert check(name, unfinished) is False
    out = capsys.readouterr().out
    assert "Hint" in out
    hint = out.split("Hint:", 1)[1]
    for code in ("@", ".T", "dim=", "softmax(", "topk", "normalize(", "[:, None]"):
        assert code not in hint, f"the hint gives code away: {code}"


# Typical mistakes, one or more per exercise: each must fail its checker.
def _sim_unnormalised(image, text):
    return text @ image.T


def _sim_wrong_orientation(image, text):
    return F.normalize(image, dim=-1) @ F.normalize(text, dim=-1).T


def _zero_shot_wrong_axis(image, classes):
    return (image @ classes.T).argmax(dim=0)


def _loss_one_directional(image, text, scale):
    logits = scale * image @ text.T
    return F.cross_entropy(logits, torch.arange(len(logits)))


def _loss_unscaled(image, text, scale):
    logits = image @ text.T
    labels = torch.arange(len(logits))
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def _loss_summed(image, text, scale):
    logits = scale * image @ text.T
    labels = torch.arange(len(logits))
    return F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)


def _grad_missing_half(logits):
    n = len(logits)
    return (logits.softmax(1) + logits.softmax(0) - 2 * torch.eye(n)) / n


def _grad_rows_only(logits):
    n = len(logits)
    return (logits.softmax(1) - torch.eye(n)) / n


def _grad_same_axis_twice(logits):
    n = len(logits)
    return (2 * logits.softmax(1) - 2 * torch.eye(n)) / (2 * n)


def _lr_no_warmup(step, total, warmup, peak):
    return peak * 0.5 * (1 + math.cos(math.pi * step / total))


def _lr_warmup_off_by_one(step, total, warmup, peak):
    if step < warmup:
        return peak * step / warmup
    return peak * 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))


def _positives_diagonal_only(ids):
    return torch.eye(len(ids), dtype=torch.bool)


def _gap_of_first_rows(image, text):
    return float((image[: len(text)] - text).mean(0).norm())


def _gap_mean_distance(image, text):
    return float(torch.cdist(image, text).mean())


def _close_gap_no_renormalise(image, text):
    gap = image.mean(0) - text.mean(0)
    return image - gap / 2, text + gap / 2


def _close_gap_wrong_sign(image, text):
    gap = image.mean(0) - text.mean(0)
    return F.normalize(image + gap / 2, dim=-1), F.normalize(text - gap / 2, dim=-1)


def _recall_top1_only(sim, rel, k):
    return float(rel.gather(1, sim.argmax(1, keepdim=True)).float().mean())


def _recall_lowest_scores(sim, rel, k):
    top = sim.topk(k, dim=1, largest=False).indices
    return float(rel.gather(1, top).any(dim=1).float().mean())


def _rank_zero_based(sim, rel):
    return solutions.best_rank(sim, rel) - 1


def _rank_ties_in_favour(sim, rel):
    best = sim.masked_fill(~rel, float("-inf")).max(dim=1).values
    return ((sim > best[:, None]) & ~rel).sum(dim=1) + 1


def _negclip_unscaled_negatives(image, text, negatives, scale):
    n = len(image)
    rows = torch.cat([scale * image @ text.T, image @ negatives.T], dim=1)
    labels = torch.arange(n)
    cols = scale * text @ image.T
    return (F.cross_entropy(rows, labels) + F.cross_entropy(cols, labels)) / 2


def _negclip_ignored(image, text, negatives, scale):
    return solutions.clip_loss(image, text, scale)


def _swap_keeps_articles(caption):
    words = caption.split()
    colors = ["red", "orange", "yellow", "green", "cyan", "blue", "purple", "white"]
    a, b = [i for i, w in enumerate(words) if w in colors]
    words[a], words[b] = words[b], words[a]
    return " ".join(words)


def _swap_shapes_instead(caption):
    words = caption.split()
    shapes = ["circle", "square", "triangle", "star", "cross"]
    a, b = [i for i, w in enumerate(words) if w in shapes]
    words[a], words[b] = words[b], words[a]
    return " ".join(words)


def _wise_ft_reversed(original, finetuned, alpha):
    return {k: alpha * v + (1 - alpha) * finetuned[k] for k, v in original.items()}


def _few_shot_first_indices(labels, k):
    return list(range(k * len(set(labels))))


MISTAKES = [
    ("similarity_matrix", _sim_unnormalised),
    ("similarity_matrix", _sim_wrong_orientation),
    ("zero_shot_predict", _zero_shot_wrong_axis),
    ("clip_loss", _loss_one_directional),
    ("clip_loss", _loss_unscaled),
    ("clip_loss", _loss_summed),
    ("logits_gradient", _grad_missing_half),
    ("logits_gradient", _grad_rows_only),
    ("logits_gradient", _grad_same_axis_twice),
    ("lr_at", _lr_no_warmup),
    ("lr_at", _lr_warmup_off_by_one),
    ("batch_positives", _positives_diagonal_only),
    ("centroid_gap", _gap_of_first_rows),
    ("centroid_gap", _gap_mean_distance),
    ("close_gap", _close_gap_no_renormalise),
    ("close_gap", _close_gap_wrong_sign),
    ("recall_at_k", _recall_top1_only),
    ("recall_at_k", _recall_lowest_scores),
    ("best_rank", _rank_zero_based),
    ("best_rank", _rank_ties_in_favour),
    ("negclip_loss", _negclip_ignored),
    ("negclip_loss", _negclip_unscaled_negatives),
    ("swap_colors", _swap_keeps_articles),
    ("swap_colors", _swap_shapes_instead),
    ("wise_ft", _wise_ft_reversed),
    ("few_shot", _few_shot_first_indices),
]


@pytest.mark.parametrize(
    ("name", "mistake"), MISTAKES, ids=[m.__name__ for _, m in MISTAKES]
)
def test_typical_mistakes_fail(name, mistake, capsys):
    assert check(name, mistake) is False
    assert "Hint" in capsys.readouterr().out


@pytest.mark.parametrize("name", NAMES)
def test_answers_of_the_wrong_shape_fail(name):
    assert check(name, lambda *args: torch.zeros(1)) is False
