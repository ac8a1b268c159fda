"""Lessons 08 and 09: typical mistakes fail, and a call of the library function does not pass

The checkers judge against the world's ground truth (which captions fit which
scenes), a brute-force loop, exact pixel coverage and autograd, never against
the answers in cmalign.course.solutions.
"""

import pytest
import torch

from cmalign.course import exercises, solutions

NAMES = ["one_object_captions", "greedy", "soft_disc", "best_of_n_curve"]


def check(name, fn):
    return getattr(exercises, f"check_{name}")(fn)


# Typical mistakes, each must fail its checker.
def _captions_without_sizes():
    return sorted(
        {
            c.replace("small ", "").replace("large ", "")
            for c in solutions.one_object_captions()
        }
    )


def _captions_position_first():
    out = []
    for c in solutions.one_object_captions():
        words = c.split()
        out.append(" ".join(words[4:] + words[:4]))
    return out


def _captions_twice():
    return solutions.one_object_captions() * 2


def _captions_wrong_place_words():
    return [
        c.replace("at the top", "on the top") for c in solutions.one_object_captions()
    ]


def _greedy_exhaustive(score, steps):
    import itertools

    keys = [k for k, _ in steps]
    combos = itertools.product(*[v for _, v in steps])
    return dict(zip(keys, max(combos, key=lambda c: score(dict(zip(keys, c))))))


def _greedy_independent(score, steps):
    return {k: max(v, key=lambda x, k=k: score({k: x})) for k, v in steps}


def _greedy_lowest(score, steps):
    chosen = {}
    for key, values in steps:
        chosen[key] = min(values, key=lambda v: score({**chosen, key: v}))
    return chosen


def _disc_hard(cx, cy, radius, softness):
    grid = torch.arange(40, dtype=torch.float32) + 0.5
    d = torch.sqrt((grid[None, :] - cx) ** 2 + (grid[:, None] - cy) ** 2)
    return (d < radius).float()


def _disc_xy_swapped(cx, cy, radius, softness):
    return solutions.soft_disc(cy, cx, radius, softness)


def _disc_radius_as_diameter(cx, cy, radius, softness):
    return solutions.soft_disc(cx, cy, radius / 2, softness)


def _disc_inside_out(cx, cy, radius, softness):
    return 1 - solutions.soft_disc(cx, cy, radius, softness)


def _curve_oracle(scores, faithful, ns):
    return [faithful[:, :n].any(dim=1).float().mean().item() for n in ns]


def _curve_ignores_n(scores, faithful, ns):
    return solutions.best_of_n_curve(scores, faithful, [scores.shape[1]]) * len(ns)


def _curve_lowest(scores, faithful, ns):
    return solutions.best_of_n_curve(-scores, faithful, ns)


MISTAKES = [
    ("one_object_captions", _captions_without_sizes),
    ("one_object_captions", _captions_position_first),
    ("one_object_captions", _captions_twice),
    ("one_object_captions", _captions_wrong_place_words),
    ("greedy", _greedy_exhaustive),
    ("greedy", _greedy_independent),
    ("greedy", _greedy_lowest),
    ("soft_disc", _disc_hard),
    ("soft_disc", _disc_xy_swapped),
    ("soft_disc", _disc_radius_as_diameter),
    ("soft_disc", _disc_inside_out),
    ("best_of_n_curve", _curve_oracle),
    ("best_of_n_curve", _curve_ignores_n),
    ("best_of_n_curve", _curve_lowest),
]


@pytest.mark.parametrize(
    ("name", "mistake"), MISTAKES, ids=[m.__name__ for _, m in MISTAKES]
)
def test_typical_mistakes_fail(name, mistake, capsys):
    assert check(name, mistake) is False
    assert "Hint" in capsys.readouterr().out


def _captions_by_the_library():
    from cmalign.toy import grammar

    return [grammar.wording(s) for s in grammar.full_specs(1)]


def _curve_by_the_library(scores, faithful, ns):
    from cmalign.generation import best_of_n

    out = []
    for n in ns:
        # best_of_n takes embeddings; scores are cosines of unit rows here by design
        index, _ = best_of_n(torch.eye(scores.shape[1]), scores, n=n)
        out.append(faithful[torch.arange(len(scores)), index].float().mean().item())
    return out


@pytest.mark.parametrize(
    ("name", "shortcut"),
    [
        ("one_object_captions", _captions_by_the_library),
        ("best_of_n_curve", _curve_by_the_library),
    ],
    ids=["captions_by_the_library", "curve_by_the_library"],
)
def test_a_call_of_the_library_function_does_not_pass(name, shortcut, capsys):
    assert check(name, shortcut) is False
    assert "without calling" in capsys.readouterr().out
