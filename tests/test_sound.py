"""The toy world's sounds: each attribute of a scene is where the mapping says it is."""

import math

import numpy as np
import pytest

from cmalign.toy import make_dataset, sound
from cmalign.toy.spec import COLORS, SHAPES


def _obj(**kw):
    base = {"color": "red", "shape": "circle", "size": "large", "center": (20.0, 20.0)}
    return {**base, **kw}


def _peak_hz(wave: np.ndarray, rate: int = sound.SAMPLE_RATE) -> float:
    spectrum = np.abs(np.fft.rfft(wave))
    return float(np.fft.rfftfreq(len(wave), 1 / rate)[spectrum.argmax()])


def test_shapes_rates_and_range():
    data = make_dataset(6, seed=0)
    sounds = sound.make_sounds(data.attributes, seed=0)
    assert sounds.shape == (6, 2, round(sound.DURATION * sound.SAMPLE_RATE))
    assert sounds.dtype == np.float32 and np.abs(sounds).max() <= 1
    again = sound.make_sounds(data.attributes, seed=0)
    assert np.array_equal(sounds, again)  # deterministic for a seed
    assert not np.array_equal(sounds, sound.make_sounds(data.attributes, seed=1))
    wide = sound.sonify(
        data.attributes[0]["objects"], np.random.default_rng(0), sample_rate=16000
    )
    assert wide.shape == (2, round(sound.DURATION * 16000))


@pytest.mark.parametrize("color", list(COLORS))
def test_colour_is_the_pitch_of_the_strongest_partial(color):
    rng = np.random.default_rng(0)
    for shape in SHAPES:
        clip = sound.sonify([_obj(color=color, shape=shape)], rng)
        ratio = _peak_hz(clip.sum(0)) / sound.PITCHES[color]
        assert abs(math.log(ratio)) < 0.04  # the +-3 % jitter and a 2 Hz bin


def test_pitches_are_evenly_spaced_in_log_frequency():
    logs = np.log(list(sound.PITCHES.values()))
    assert np.allclose(np.diff(logs), math.log(4) / 7)


def test_timbre_partials_are_where_the_table_says():
    rng = np.random.default_rng(1)
    tone = sound.tone(_obj(color="red", shape="square"), rng)
    spectrum = np.abs(np.fft.rfft(tone, n=8 * len(tone)))
    freqs = np.fft.rfftfreq(8 * len(tone), 1 / sound.SAMPLE_RATE)
    f0 = freqs[spectrum.argmax()]

    def level(f):
        return spectrum[np.abs(freqs - f) < 5].max()

    assert level(3 * f0) > 20 * level(2 * f0)  # odd harmonics only
    assert level(3 * f0) > 0.2 * level(f0)
    with pytest.raises(ValueError, match="shape"):
        sound.tone(_obj(shape="hexagon"), rng)


def test_size_is_loudness_and_x_is_the_pan():
    rng = np.random.default_rng(2)

    def energy(clip):
        return (clip.astype(float) ** 2).sum(axis=1)  # per channel

    large = energy(sound.sonify([_obj(size="large")], rng)).sum()
    small = energy(sound.sonify([_obj(size="small")], rng)).sum()
    assert 10 * math.log10(large / small) == pytest.approx(9, abs=2.5)
    left = energy(sound.sonify([_obj(center=(10.0, 20.0))], rng))
    right = energy(sound.sonify([_obj(center=(30.0, 20.0))], rng))
    assert left[0] > 10 * left[1] and right[1] > 10 * right[0]


def test_y_is_the_onset_top_first():
    rng = np.random.default_rng(3)

    def onset(clip):
        loud = np.abs(clip.sum(0)) > 0.05
        return np.argmax(loud) / sound.SAMPLE_RATE

    top = onset(sound.sonify([_obj(center=(20.0, 9.0))], rng))
    bottom = onset(sound.sonify([_obj(center=(20.0, 31.0))], rng))
    assert top < 0.03 and bottom > 0.25


def test_players_embed_the_audio_and_check_their_inputs():
    data = make_dataset(2, seed=0)
    sounds = sound.make_sounds(data.attributes)
    table = sound.players(sounds, images=data.images, captions=["a <b>", "c"])
    assert table.data.count("<audio") == 2 and table.data.count("<img") == 2
    assert "base64" in table.data and "&lt;b&gt;" in table.data
    with pytest.raises(ValueError, match="captions"):
        sound.players(sounds, captions=["one"])
    with pytest.raises(ValueError, match="sounds"):
        sound.players(sounds[0])
    with pytest.raises(ValueError, match="attributes"):
        sound.make_sounds([])
