"""Uncertainty for the numbers lessons compare: bootstrap intervals over queries, and seeds.

A lesson that says "A beats B" prints both numbers with an interval from
here, and says "differs" only when the interval of the *difference* excludes
zero. Per-query outcomes (a 0/1 hit per query, a rank, a loss) go in; the
query set is resampled with replacement (Efron's percentile bootstrap), the
same resampled queries for both sides of a paired comparison. Where training
is involved, the spread over seeds is the honest interval instead
(:func:`seed_interval`). Taught in notebooks/05_retrieval_evaluation.ipynb;
used by every lesson that compares.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

ArrayLike = Sequence[float] | np.ndarray | torch.Tensor


@dataclass(frozen=True)
class Interval:
    """An estimate with a two-sided confidence interval."""

    estimate: float
    low: float
    high: float
    level: float = 0.95

    def excludes(self, value: float = 0.0) -> bool:
        """True when ``value`` lies outside [low, high] (e.g. a difference is not zero)."""
        return not self.low <= value <= self.high

    def __format__(self, spec: str) -> str:
        spec = spec or ".3f"
        pct = int(round(100 * self.level))
        return f"{self.estimate:{spec}} [{self.low:{spec}}, {self.high:{spec}}] ({pct}% CI)"

    def __str__(self) -> str:
        return format(self, "")


def _as_array(values: ArrayLike, name: str) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().double().numpy()
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or len(array) == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} holds NaN or inf")
    return array


def bootstrap_ci(
    values: ArrayLike,
    *,
    statistic: Callable[[np.ndarray], float] = np.mean,
    n_resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Percentile-bootstrap interval of ``statistic`` over per-query ``values``.

    Parameters
    ----------
    values : sequence or tensor of shape (n_queries,)
        One outcome per query (1.0/0.0 for a hit, a rank, a loss).
    statistic : callable
        Applied to each resample (default: the mean, e.g. Recall@K).

    Returns
    -------
    Interval
        ``statistic(values)`` with the ``level`` percentile interval.
    """
    x = _as_array(values, "values")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(n_resamples, len(x)))
    stats = np.array([statistic(x[i]) for i in idx])
    tail = (1 - level) / 2
    return Interval(
        float(statistic(x)),
        float(np.quantile(stats, tail)),
        float(np.quantile(stats, 1 - tail)),
        level,
    )


def paired_difference_ci(
    a: ArrayLike,
    b: ArrayLike,
    *,
    n_resamples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> Interval:
    """Interval of mean(a) - mean(b) when ``a`` and ``b`` are outcomes on the same queries.

    Parameters
    ----------
    a, b : sequences or tensors of shape (n_queries,)
        Per-query outcomes of two methods on the same queries, in the same order.
        Resampling the queries once for both keeps their pairing, which gives a
        narrower (and correct) interval than two separate ones.
    """
    x, y = _as_array(a, "a"), _as_array(b, "b")
    if len(x) != len(y):
        raise ValueError(f"a and b must score the same queries: {len(x)} vs {len(y)}")
    return bootstrap_ci(x - y, n_resamples=n_resamples, level=level, seed=seed)


def seed_interval(values: ArrayLike, *, level: float = 0.95) -> Interval:
    """Mean over training seeds with a Student-t interval (for a handful of runs).

    Parameters
    ----------
    values : sequence of shape (n_seeds,), at least 2
    """
    from scipy import stats as sp_stats

    x = _as_array(values, "values")
    if len(x) < 2:
        raise ValueError("seed_interval needs at least 2 seeds")
    half = sp_stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return Interval(float(x.mean()), float(x.mean() - half), float(x.mean() + half), level)
