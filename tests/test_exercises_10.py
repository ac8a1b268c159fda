"""Lesson 10's exercises: typical mistakes fail (that the reference answers pass, never see
the checkers' code and that unfinished answers fail is tests/test_exercises.py, for every lesson)."""

import math

import numpy as np
import pytest

from cmalign.course import exercises, solutions
from cmalign.toy.sound import PITCHES

NAMES = ["color_from_sound", "chance_recall_at_k"]


def check(name, fn):
    return getattr(exercises, f"check_{name}")(fn)


def _nearest(f0: float) -> str:
    return min(PITCHES, key=lambda c: abs(math.log(PITCHES[c] / max(f0, 1e-9))))


def _colour_from_bin_number(waveform, sample_rate):  # forgets to convert bins to Hz
    spectrum = np.abs(np.fft.rfft(np.asarray(waveform).sum(0)))
    return _nearest(float(spectrum.argmax()))


def _colour_at_a_fixed_rate(waveform, sample_rate):  # ignores the rate it is given
    return solutions.color_from_sound(waveform, 8000)


def _colour_of_the_highest_partial(waveform, sample_rate):  # not the fundamental
    mono = np.asarray(waveform).sum(0)
    spectrum = np.abs(np.fft.rfft(mono))
    freqs = np.fft.rfftfreq(len(mono), 1 / sample_rate)
    strong = freqs[spectrum > 0.1 * spectrum.max()]
    return _nearest(float(strong.max()))


def _chance_linear(relevance, k):  # K * r / n: counts overlaps twice
    return float((k * relevance.sum(1) / relevance.shape[1]).clamp(max=1).mean())


def _chance_ignoring_k(relevance, k):  # the R@1 formula for every K
    return float(relevance.float().mean(1).mean())


def _chance_of_a_perfect_hit(relevance, k):  # all K on top relevant, not one
    n = relevance.shape[1]
    return float(
        np.mean([math.comb(int(r), k) / math.comb(n, k) for r in relevance.sum(1)])
    )


@pytest.mark.parametrize(
    "name, mistake",
    [
        ("color_from_sound", _colour_from_bin_number),
        ("color_from_sound", _colour_at_a_fixed_rate),
        ("color_from_sound", _colour_of_the_highest_partial),
        ("chance_recall_at_k", _chance_linear),
        ("chance_recall_at_k", _chance_ignoring_k),
        ("chance_recall_at_k", _chance_of_a_perfect_hit),
    ],
)
def test_typical_mistakes_fail(name, mistake, capsys):
    assert check(name, mistake) is False
    assert "Hint" in capsys.readouterr().out
