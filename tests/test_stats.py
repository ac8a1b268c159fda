"""Bootstrap and seed intervals: coverage of a known mean, pairing, and bad input named."""

import numpy as np
import pytest
import torch

from cmalign.stats import bootstrap_ci, paired_difference_ci, seed_interval


def test_bootstrap_interval_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    covered = 0
    for trial in range(200):
        hits = rng.random(300) < 0.7  # a Recall of 0.7 on 300 queries
        ci = bootstrap_ci(hits, n_resamples=400, seed=trial)
        covered += ci.low <= 0.7 <= ci.high
    assert 0.88 <= covered / 200 <= 0.99
    # the half-width is about 1.96 standard errors of a proportion
    ci = bootstrap_ci(rng.random(300) < 0.7)
    se = np.sqrt(0.7 * 0.3 / 300)
    assert (ci.high - ci.low) / 2 == pytest.approx(1.96 * se, rel=0.2)


def test_pairing_narrows_the_interval_and_finds_a_small_consistent_gain():
    rng = np.random.default_rng(1)
    base = (rng.random(400) < 0.5).astype(float)
    better = base.copy()
    flip = np.flatnonzero(base == 0)[:20]  # 20 of 400 queries fixed, none broken
    better[flip] = 1
    paired = paired_difference_ci(better, base)
    assert paired.estimate == pytest.approx(0.05)
    assert paired.excludes(0.0)
    a, b = bootstrap_ci(better), bootstrap_ci(base)
    assert a.low < b.high  # the two separate intervals overlap: only pairing shows it


def test_seed_interval_is_student_t():
    ci = seed_interval([0.80, 0.82, 0.84])
    assert ci.estimate == pytest.approx(0.82)
    assert (ci.high - ci.estimate) == pytest.approx(4.303 * 0.02 / np.sqrt(3), rel=1e-3)


def test_intervals_format_and_accept_tensors():
    ci = bootstrap_ci(torch.tensor([1.0, 0.0, 1.0, 1.0]))
    assert f"{ci:.2f}".startswith("0.75 [") and "95% CI" in str(ci)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: bootstrap_ci([]), "values must be a non-empty"),
        (lambda: bootstrap_ci([1.0, float("nan")]), "NaN"),
        (lambda: paired_difference_ci([1.0, 0.0], [1.0]), "same queries"),
        (lambda: seed_interval([0.5]), "at least 2 seeds"),
    ],
)
def test_bad_input_is_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()
