"""A third modality: bind sounds to a CLIP space through a frozen tower (ImageBind).

ImageBind (Girdhar et al. 2023) trains an encoder for a new modality with
the contrastive loss against the *frozen* image tower on (sound, image)
pairs only; because the image tower is already aligned with text, the new
modality lands near text without ever being paired with it. Here:

* :func:`spectrogram` — log-power STFT of each channel (``torch.stft``), pooled
  into log-frequency bands (:func:`log_filterbank`);
* :class:`AudioEncoder` — a small convolutional network from spectrograms to
  unit vectors; :func:`embed_sounds` runs it in batches;
* :func:`bind` — train it with :func:`cmalign.losses.clip_loss` against
  fixed target embeddings (image embeddings for ImageBind's recipe, caption
  embeddings for a direct sound-text model), a learnable clamped scale.

Taught in notebooks/10_third_modality_audio.ipynb.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .losses import LOGIT_SCALE_INIT, clamp_logit_scale_, clip_loss
from .optim import warmup_cosine
from .utils import check_embeddings


def log_filterbank(
    *, n_fft: int, sample_rate: int, n_bands: int, fmin: float, fmax: float
) -> torch.Tensor:
    """Triangular filters with centres evenly spaced in log-frequency (like mel).

    A pitch change is then a shift along the band axis, the same for every
    partial. Each triangle spans two band spacings; keep ``fmin`` high enough
    that this is wider than one FFT bin (``sample_rate / n_fft``).

    Returns
    -------
    torch.Tensor of shape (n_bands, n_fft // 2 + 1), float32
    """
    if not 0 < fmin < fmax <= sample_rate / 2 or n_bands < 1:
        raise ValueError(
            f"need n_bands >= 1 and 0 < fmin < fmax <= sample_rate / 2, got "
            f"n_bands={n_bands}, fmin={fmin}, fmax={fmax}, sample_rate={sample_rate}"
        )
    freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    edges = fmin * (fmax / fmin) ** torch.linspace(0, 1, n_bands + 2)
    low, centre, high = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs - low) / (centre - low)
    falling = (high - freqs) / (high - centre)
    return torch.minimum(rising, falling).clamp(min=0)


def spectrogram(
    waveforms: np.ndarray | torch.Tensor,
    *,
    sample_rate: int = 8000,
    n_fft: int = 512,
    hop_length: int = 256,
    n_bands: int | None = 48,
    fmin: float = 180.0,
    fmax: float = 3900.0,
) -> torch.Tensor:
    """Log-power spectrogram of every channel (Hann window, centred frames).

    .. math:: S[c, b, t] = \\log\\Big(\\sum_f W[b, f]\\,|X_c[f, t]|^2 + 10^{-6}\\Big)

    with ``W`` the :func:`log_filterbank` (or the identity, ``n_bands=None``).

    Parameters
    ----------
    waveforms : array or tensor of shape (n_sounds, channels, n_samples)
    sample_rate : int
        Samples per second of the waveforms.
    n_fft : int
        Window and FFT length in samples (512 at 8 kHz: 64 ms, bins 15.6 Hz apart).
    hop_length : int
        Samples between frames (256 at 8 kHz: 32 ms).
    n_bands : int or None
        Log-frequency bands between ``fmin`` and ``fmax`` Hz; None keeps the
        ``n_fft // 2 + 1`` linear FFT bins.

    Returns
    -------
    torch.Tensor of shape (n_sounds, channels, n_bands, 1 + n_samples // hop_length)
        float32 (``n_fft // 2 + 1`` rows instead of ``n_bands`` when it is None).
    """
    x = torch.as_tensor(np.asarray(waveforms), dtype=torch.float32)
    if x.ndim != 3:
        raise ValueError(
            "waveforms must have shape (n_sounds, channels, n_samples), "
            f"got {tuple(x.shape)}"
        )
    if n_fft < 2 or not 1 <= hop_length <= n_fft:
        raise ValueError(
            f"need n_fft >= 2 and 1 <= hop_length <= n_fft, got {n_fft}, {hop_length}"
        )
    n, channels, samples = x.shape
    stft = torch.stft(
        x.reshape(n * channels, samples),
        n_fft,
        hop_length=hop_length,
        window=torch.hann_window(n_fft),
        center=True,
        return_complex=True,
    )  # (n * channels, n_fft // 2 + 1, frames)
    power = stft.abs().pow(2)
    if n_bands is not None:
        bank = log_filterbank(
            n_fft=n_fft, sample_rate=sample_rate, n_bands=n_bands, fmin=fmin, fmax=fmax
        )
        power = torch.einsum("bf,nft->nbt", bank, power)
    return power.add(1e-6).log().reshape(n, channels, *power.shape[1:])


class AudioEncoder(nn.Module):
    """Log-band spectrogram -> unit vector in the shared space.

    Two strided convolutions run along the log-frequency axis: a pitch change
    shifts every partial by the same number of bands, so one filter finds a
    timbre at any pitch. Every (channel, frame) pair is an input channel, so
    *when* a tone starts and *which side* it comes from are kept. A linear
    projection maps the result into the frozen tower's space.

    Parameters
    ----------
    embed_dim : int
        Size of the shared space (the frozen tower's: 128 for the toy CLIP).
    channels, bands, frames : int
        The spectrogram's shape (stereo, 48 bands, 16 frames by default).
    width : int
        Filters of each convolution.
    """

    def __init__(
        self,
        *,
        embed_dim: int = 128,
        channels: int = 2,
        bands: int = 48,
        frames: int = 16,
        width: int = 64,
    ):
        super().__init__()
        self.shape = (channels, bands, frames)
        self.convs = nn.Sequential(
            nn.Conv1d(channels * frames, width, 5, stride=2, padding=2),
            nn.GELU(),
            nn.Conv1d(width, width, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            features = self.convs(torch.zeros(1, channels * frames, bands)).shape[1]
        self.projection = nn.Linear(features, embed_dim)

    def forward(self, spectrograms: torch.Tensor) -> torch.Tensor:
        """(n, channels, bands, frames) log-power -> (n, embed_dim), L2-normalised."""
        if tuple(spectrograms.shape[1:]) != self.shape:
            raise ValueError(
                f"spectrograms must have shape (n, {', '.join(map(str, self.shape))}), "
                f"got {tuple(spectrograms.shape)}"
            )
        x = (spectrograms + 2.5) / 2  # log-power of the clips: mean about -2.5, sd 2
        x = x.transpose(2, 3).flatten(1, 2)  # (n, channels * frames, bands)
        return F.normalize(self.projection(self.convs(x)), dim=-1)


@torch.no_grad()
def embed_sounds(
    encoder: AudioEncoder, spectrograms: torch.Tensor, *, batch_size: int = 512
) -> torch.Tensor:
    """Embed spectrograms in batches with the encoder in eval mode.

    Parameters
    ----------
    encoder : AudioEncoder
    spectrograms : torch.Tensor of shape (n_sounds, channels, bands, frames)
        From :func:`spectrogram`.
    batch_size : int
        Sounds encoded at a time.

    Returns
    -------
    torch.Tensor of shape (n_sounds, embed_dim), L2-normalised rows.
    """
    encoder.eval()
    return torch.cat(
        [
            encoder(spectrograms[i : i + batch_size])
            for i in range(0, len(spectrograms), batch_size)
        ]
    )


def bind(
    encoder: AudioEncoder,
    spectrograms: torch.Tensor,
    target_emb: torch.Tensor,
    *,
    positives: torch.Tensor | None = None,
    steps: int = 300,
    batch_size: int = 128,
    lr: float = 3e-3,
    weight_decay: float = 0.05,
    seed: int = 0,
) -> dict[str, list[float]]:
    """Train ``encoder`` so each sound picks out its own target, and back.

    The targets stay fixed (a frozen tower's embeddings, computed once): only
    the encoder and the log-scale learn. Each step draws ``batch_size`` pairs
    and minimises ``clip_loss(sound_emb, target_emb, exp(log_scale))``
    (AdamW, 10 % linear warm-up then cosine, log-scale clamped at ln 100).

    Parameters
    ----------
    encoder : AudioEncoder
    spectrograms : torch.Tensor of shape (n_pairs, channels, freq, time)
    target_emb : torch.Tensor of shape (n_pairs, dim), L2-normalised
        Row i is the frozen embedding paired with sound i (its image, or its
        caption).
    positives : torch.Tensor of shape (n_pairs, n_pairs), bool, optional
        ``positives[i, j]``: target j also fits sound i (soft targets, as in
        :func:`cmalign.losses.clip_loss`); default only the pair itself.
    steps, batch_size, lr, weight_decay, seed
        The optimisation; ``seed`` fixes the batches.

    Returns
    -------
    dict
        ``loss`` and ``scale`` per step.
    """
    target_emb = check_embeddings(target_emb, "target_emb")
    if len(spectrograms) != len(target_emb):
        raise ValueError(
            f"spectrograms has {len(spectrograms)} rows for {len(target_emb)} target_emb rows"
        )
    if positives is not None and tuple(positives.shape) != (len(target_emb),) * 2:
        raise ValueError(f"positives must have shape {(len(target_emb),) * 2}")
    if steps < 1 or not 2 <= batch_size <= len(target_emb):
        raise ValueError(
            f"need steps >= 1 and 2 <= batch_size <= n_pairs, got {steps}, {batch_size}"
        )
    log_scale = nn.Parameter(torch.tensor(LOGIT_SCALE_INIT))
    optimizer = torch.optim.AdamW(
        [
            {"params": list(encoder.parameters()), "weight_decay": weight_decay},
            {"params": [log_scale], "weight_decay": 0.0},
        ],
        lr=lr,
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(steps, max(1, math.ceil(0.1 * steps)))
    )
    g = torch.Generator().manual_seed(seed)
    history: dict[str, list[float]] = {"loss": [], "scale": []}
    encoder.train()
    for _ in range(steps):
        idx = torch.randperm(len(target_emb), generator=g)[:batch_size]
        batch_positives = None if positives is None else positives[idx][:, idx]
        loss = clip_loss(
            encoder(spectrograms[idx]),
            target_emb[idx],
            log_scale.exp(),
            positives=batch_positives,
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        clamp_logit_scale_(log_scale)
        history["loss"].append(float(loss.detach()))
        history["scale"].append(float(log_scale.detach().exp()))
    encoder.eval()
    return history
