"""Spectrograms, the audio encoder and binding against frozen targets."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cmalign import audio
from cmalign.toy import make_dataset, sound


def test_spectrogram_against_a_frame_by_frame_fft():
    g = np.random.default_rng(0)
    waves = g.standard_normal((2, 2, 1000)).astype(np.float32)
    spec = audio.spectrogram(waves, n_fft=64, hop_length=32, n_bands=None)
    assert spec.shape == (2, 2, 33, 1 + 1000 // 32)
    padded = np.pad(waves[1, 0], 32, mode="reflect")  # torch.stft's centring
    frame = padded[5 * 32 : 5 * 32 + 64] * np.hanning(65)[:-1]  # periodic Hann
    power = np.abs(np.fft.rfft(frame)) ** 2
    assert np.allclose(spec[1, 0, :, 5].numpy(), np.log(power + 1e-6), atol=1e-3)


def test_log_bands_turn_a_pitch_ratio_into_a_shift():
    bank = audio.log_filterbank(
        n_fft=512, sample_rate=8000, n_bands=48, fmin=180.0, fmax=3900.0
    )
    assert bank.shape == (48, 257) and (bank >= 0).all()
    assert (bank.sum(dim=1) > 0).all()  # every band holds at least one FFT bin
    rate, t = 8000, np.arange(4000) / 8000
    step = math.log(3900 / 180) / 49  # log spacing of the band centres
    tones = np.stack(
        [np.sin(2 * np.pi * f * t) for f in (400, 400 * math.exp(4 * step))]
    )
    peaks = audio.spectrogram(tones[:, None], sample_rate=rate)[:, 0, :, 8].argmax(
        dim=1
    )
    assert int(peaks[1] - peaks[0]) == 4
    with pytest.raises(ValueError, match="fmin"):
        audio.log_filterbank(n_fft=512, sample_rate=8000, n_bands=4, fmin=10, fmax=5000)
    with pytest.raises(ValueError, match="waveforms"):
        audio.spectrogram(np.zeros((3, 100)))


def test_encoder_gives_unit_rows_and_names_a_wrong_shape():
    spec = audio.spectrogram(sound.make_sounds(make_dataset(5, seed=0).attributes))
    torch.manual_seed(0)
    encoder = audio.AudioEncoder(embed_dim=16)
    emb = audio.embed_sounds(encoder, spec, batch_size=2)
    assert emb.shape == (5, 16)
    assert torch.allclose(emb.norm(dim=1), torch.ones(5), atol=1e-5)
    assert torch.allclose(emb, encoder(spec), atol=1e-6)  # batches change nothing
    with pytest.raises(ValueError, match="spectrograms"):
        encoder(spec[:, :1])


def test_bind_learns_to_pick_out_its_targets_and_keeps_them_frozen():
    g = torch.Generator().manual_seed(0)
    spec = torch.randn(64, 2, 48, 16, generator=g)
    targets = F.normalize(torch.randn(64, 8, generator=g), dim=-1)
    frozen = targets.clone()
    torch.manual_seed(0)
    encoder = audio.AudioEncoder(embed_dim=8)
    history = audio.bind(encoder, spec, targets, steps=60, batch_size=32, lr=3e-3)
    assert torch.equal(targets, frozen)
    assert len(history["loss"]) == 60 and history["loss"][-1] < 0.5 * history["loss"][0]
    assert all(0 < s <= 100 + 1e-4 for s in history["scale"])
    hits = (audio.embed_sounds(encoder, spec) @ targets.T).argmax(1) == torch.arange(64)
    assert hits.float().mean() > 0.75  # chance: 1 / 64


def test_bind_with_positives_and_its_errors():
    g = torch.Generator().manual_seed(1)
    spec = torch.randn(16, 2, 48, 16, generator=g)
    targets = F.normalize(torch.randn(16, 8, generator=g), dim=-1)
    encoder = audio.AudioEncoder(embed_dim=8)
    same = torch.arange(16) // 2  # pairs of sounds share each other's targets
    positives = same[:, None] == same[None, :]
    history = audio.bind(
        encoder, spec, targets, positives=positives, steps=3, batch_size=8
    )
    assert all(math.isfinite(x) for x in history["loss"])
    with pytest.raises(ValueError, match="target_emb"):
        audio.bind(encoder, spec[:4], targets, steps=1)
    with pytest.raises(ValueError, match="positives"):
        audio.bind(encoder, spec, targets, positives=positives[:4], steps=1)
    with pytest.raises(ValueError, match="batch_size"):
        audio.bind(encoder, spec, targets, steps=1, batch_size=17)
    with pytest.raises(ValueError, match="target_emb"):
        audio.bind(encoder, spec, targets * 3, steps=1)
