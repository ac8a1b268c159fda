"""Hear a toy scene: the same scene specs that :mod:`.draw` paints, made into sound.

Each object of a scene is one short tone in a stereo clip, and every
attribute that the picture shows has a sound of its own:

- colour -> pitch: the fundamental, eight steps of a ratio 4**(1/7) from
  200 Hz (red lowest, white highest, in the order of ``COLORS``), jittered
  by up to ±3 % per object, as colours are jittered in the picture;
- shape -> timbre: which partials sound (``TIMBRES``): circle a pure tone,
  square odd harmonics, triangle every harmonic, star a bell's inharmonic
  partials (decaying), cross octaves;
- size -> loudness: small is 9 dB quieter than large (±1 dB jitter) at the
  same shape; the level is the peak of the summed partials, so a timbre with
  more partials is quieter in RMS (up to 6 dB below a pure tone);
- x (left / right) -> stereo pan, constant power: an object on the left
  sounds in the left channel;
- y (top / bottom) -> onset time: the top of the picture sounds first, the
  bottom last (so "A above B" is "A, then B").

A clip lasts ``DURATION`` s at ``SAMPLE_RATE`` Hz with a faint noise floor
(the analogue of the noisy background). :func:`players` shows scenes as a
table of pictures, players and captions that plays in the exported HTML too.
Taught in notebooks/10_third_modality_audio.ipynb.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence

import numpy as np
from PIL import Image

from .spec import COLORS, IMAGE_SIZE

SAMPLE_RATE = 8000
DURATION = 0.5
TONE_SECONDS = 0.2
#: Colour -> fundamental frequency in Hz (the spectrum's order of the colours).
PITCHES = {name: 200.0 * 4 ** (k / 7) for k, name in enumerate(COLORS)}
#: Shape -> partials as (frequency ratio to the fundamental, amplitude).
TIMBRES = {
    "circle": ((1.0, 1.0),),
    "square": ((1.0, 1.0), (3.0, 1 / 3), (5.0, 1 / 5), (7.0, 1 / 7)),
    "triangle": tuple((float(k), 1 / k) for k in range(1, 7)),
    "star": ((1.0, 1.0), (2.76, 0.6), (5.40, 0.4)),
    "cross": ((1.0, 1.0), (2.0, 0.7), (4.0, 0.5), (8.0, 0.3)),
}
#: Shapes whose tone decays like a struck bell instead of holding.
DECAYING = ("star",)
#: Size -> level (peak of one partial sum, before panning): 9 dB apart.
LEVELS = {"large": 0.3, "small": 0.3 * 10 ** (-9 / 20)}
NOISE_LEVEL = 0.01


def _unit(v: float) -> float:
    """A coordinate in pixels -> 0..1 across the band objects are placed in."""
    return float(np.clip((v - 8) / (IMAGE_SIZE - 16), 0.0, 1.0))


def tone(
    obj: dict, rng: np.random.Generator, *, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """The mono tone of one object (colour, shape and size; not its place).

    Returns
    -------
    np.ndarray of shape (round(TONE_SECONDS * sample_rate),), float64
    """
    if obj["shape"] not in TIMBRES:
        raise ValueError(
            f"obj['shape'] must be one of {list(TIMBRES)}, got {obj['shape']!r}"
        )
    t = np.arange(round(TONE_SECONDS * sample_rate)) / sample_rate
    f0 = PITCHES[obj["color"]] * np.exp(rng.uniform(-0.03, 0.03))
    wave = np.zeros_like(t)
    partials = [
        (r, a) for r, a in TIMBRES[obj["shape"]] if r * f0 < 0.475 * sample_rate
    ]
    for ratio, amplitude in partials:  # band-limited: nothing above 0.95 Nyquist
        wave += amplitude * np.sin(
            2 * np.pi * ratio * f0 * t + rng.uniform(0, 2 * np.pi)
        )
    wave /= sum(a for _, a in partials)
    level = LEVELS[obj["size"]] * 10 ** (rng.uniform(-1, 1) / 20)
    attack = np.clip(t / 0.01, 0, 1)
    if obj["shape"] in DECAYING:
        envelope = attack * np.exp(-t / 0.07)
    else:
        envelope = attack * np.clip((TONE_SECONDS - t) / 0.04, 0, 1)
    return level * envelope * wave


def sonify(
    objects: list[dict], rng: np.random.Generator, *, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """The stereo clip of a scene: each object's tone, panned by x, delayed by y.

    Parameters
    ----------
    objects : list of dict
        As in a scene's ``attributes["objects"]``: color, shape, size and
        ``center`` (x, y) in pixels.
    rng : np.random.Generator
        Pitch and loudness jitter, phases and the noise floor.

    Returns
    -------
    np.ndarray of shape (2, round(DURATION * sample_rate)), float32 in [-1, 1]
        Row 0 is the left channel, row 1 the right.
    """
    n = round(DURATION * sample_rate)
    clip = NOISE_LEVEL * rng.standard_normal((2, n))
    latest = DURATION - TONE_SECONDS
    for obj in objects:
        x, y = obj["center"]
        wave = tone(obj, rng, sample_rate=sample_rate)
        start = round(latest * _unit(y) * sample_rate)
        angle = np.pi / 2 * _unit(x)  # 0: hard left, pi/2: hard right
        clip[0, start : start + len(wave)] += np.cos(angle) * wave
        clip[1, start : start + len(wave)] += np.sin(angle) * wave
    return np.clip(clip, -1, 1).astype(np.float32)


def make_sounds(
    attributes: Sequence[dict], *, seed: int = 0, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """One clip per scene, deterministically for a given seed.

    Parameters
    ----------
    attributes : sequence of dict
        A dataset's ``attributes`` (:func:`cmalign.toy.make_dataset`): the
        sounds describe exactly the scenes the images show.
    seed : int
        Seeds the jitter and noise (independent of the images' own).

    Returns
    -------
    np.ndarray of shape (n_sounds, 2, round(DURATION * sample_rate)), float32
    """
    if len(attributes) == 0:
        raise ValueError("attributes is empty")
    rng = np.random.default_rng([seed, 10])
    return np.stack(
        [sonify(a["objects"], rng, sample_rate=sample_rate) for a in attributes]
    )


def _png(image: Image.Image, size: int) -> str:
    buffer = io.BytesIO()
    image.resize((size, size), Image.NEAREST).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def players(
    sounds: np.ndarray,
    *,
    images: Sequence[Image.Image] | None = None,
    captions: Sequence[str] | None = None,
    sample_rate: int = SAMPLE_RATE,
):
    """A table of players (one row per sound), with its picture and caption.

    The audio is embedded as base64 WAV data (``IPython.display.Audio``), so
    the table plays in the exported HTML too. Loudness is kept as it is
    (``normalize=False``): small objects sound quieter.

    Parameters
    ----------
    sounds : np.ndarray of shape (n_sounds, 2, n_samples), values in [-1, 1]
    images : sequence of n_sounds PIL images, optional
    captions : sequence of n_sounds str, optional

    Returns
    -------
    IPython.display.HTML
    """
    from IPython.display import HTML, Audio

    sounds = np.asarray(sounds)
    if sounds.ndim != 3 or np.abs(sounds).max() > 1:
        raise ValueError(
            "sounds must have shape (n_sounds, channels, n_samples) with values in "
            f"[-1, 1], got shape {sounds.shape}"
        )
    for name, items in (("images", images), ("captions", captions)):
        if items is not None and len(items) != len(sounds):
            raise ValueError(
                f"{name} has {len(items)} entries for {len(sounds)} sounds"
            )
    rows = []
    for i, sound in enumerate(sounds):
        cells = []
        if images is not None:
            cells.append(f'<img src="data:image/png;base64,{_png(images[i], 64)}">')
        cells.append(Audio(sound, rate=sample_rate, normalize=False)._repr_html_())
        if captions is not None:
            cells.append(html.escape(captions[i]))
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return HTML("<table>" + "".join(rows) + "</table>")
