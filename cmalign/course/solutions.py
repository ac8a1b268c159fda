"""Reference answers to the lessons' exercises. Try them yourself first!

One function per exercise, named as in the lesson. The checkers in
:mod:`cmalign.exercises` never import this module: they judge an answer
against the library, autograd, a brute-force loop or a property, and
``tests/test_exercises.py`` proves that each answer here passes and that
typical mistakes fail.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def similarity_matrix(
    image_features: torch.Tensor, text_features: torch.Tensor
) -> torch.Tensor:
    """01: cosine similarities (n_texts, n_images) from raw, unnormalised features."""
    image = F.normalize(image_features, dim=-1)
    text = F.normalize(text_features, dim=-1)
    return text @ image.T


def prompt_ensemble(
    encode_text, classnames: list[str], templates: list[str]
) -> torch.Tensor:
    """01: zero-shot class weights (n_classes, dim): each class's prompts averaged."""
    prompts = [t.format(c) for c in classnames for t in templates]  # class-major
    emb = F.normalize(encode_text(prompts), dim=-1)  # (n_classes * n_templates, dim)
    emb = emb.view(len(classnames), len(templates), -1).mean(dim=1)
    return F.normalize(emb, dim=-1)


def clip_loss(
    image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: float
) -> torch.Tensor:
    """02: symmetric InfoNCE, written with log-softmax."""
    logits_per_image = logit_scale * image_emb @ text_emb.T  # (n_images, n_texts)
    image_to_text = -torch.log_softmax(logits_per_image, dim=1).diagonal().mean()
    text_to_image = -torch.log_softmax(logits_per_image, dim=0).diagonal().mean()
    return (image_to_text + text_to_image) / 2


def logits_gradient(logits: torch.Tensor) -> torch.Tensor:
    """02: d(clip loss)/d(logits) by hand: (softmax rows + softmax cols - 2I) / 2n."""
    n = len(logits)
    eye = torch.eye(n, dtype=logits.dtype)
    return (torch.softmax(logits, 1) + torch.softmax(logits, 0) - 2 * eye) / (2 * n)


def lr_at(step: int, total: int, warmup: int, peak: float) -> float:
    """03: linear warm-up to ``peak`` over ``warmup`` steps, then cosine to 0."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * 0.5 * (1 + math.cos(math.pi * progress))


def same_image_positives(image_ids: torch.Tensor) -> torch.Tensor:
    """03: positives[i, j] = caption j's image is image i's image (duplicates count)."""
    return image_ids[:, None] == image_ids[None, :]


def train_loop(model, next_batch, steps: int, lr: float, warmup: int) -> list[float]:
    """03: the contrastive training loop from the library's pieces."""
    from cmalign.features import image_features, text_features
    from cmalign.losses import clamp_logit_scale_, clip_loss
    from cmalign.optim import param_groups, warmup_cosine

    optimizer = torch.optim.AdamW(
        param_groups(model, weight_decay=0.1), lr=lr, betas=(0.9, 0.98), eps=1e-6
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(steps, warmup)
    )
    model.train()
    history = []
    for step in range(1, steps + 1):
        pixel_values, tokens, positives = next_batch(step)
        image_emb = image_features(model, pixel_values)
        text_emb = text_features(model, **tokens)
        loss = clip_loss(
            image_emb, text_emb, model.logit_scale.exp(), positives=positives
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        clamp_logit_scale_(model.logit_scale)  # s = e^t stays <= 100
        schedule.step()
        history.append(loss.item())
    model.eval()
    return history


def centroid_gap(image_emb: torch.Tensor, text_emb: torch.Tensor) -> float:
    """04: distance between the mean image and the mean text embedding."""
    return float((image_emb.mean(0) - text_emb.mean(0)).norm())


def close_gap(
    image_emb: torch.Tensor, text_emb: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """04: move both modalities halfway along the gap, then re-normalise."""
    gap = image_emb.mean(0) - text_emb.mean(0)
    return F.normalize(image_emb - gap / 2, dim=-1), F.normalize(
        text_emb + gap / 2, dim=-1
    )


def recall_at_k(similarity: torch.Tensor, relevance: torch.Tensor, k: int) -> float:
    """05: fraction of queries with a relevant item in their top k."""
    top = similarity.topk(k, dim=1).indices
    return float(relevance.gather(1, top).any(dim=1).float().mean())


def best_rank(similarity: torch.Tensor, relevance: torch.Tensor) -> torch.Tensor:
    """05: 1-based rank of the best relevant item (ties counted against)."""
    best = similarity.masked_fill(~relevance, float("-inf")).max(dim=1).values
    return ((similarity >= best[:, None]) & ~relevance).sum(dim=1) + 1


def paired_interval(
    a, b, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """05: 95 % percentile-bootstrap interval of mean(a) - mean(b), same queries."""
    import numpy as np

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(n_resamples, len(a)))  # one draw for both
    differences = a[idx].mean(axis=1) - b[idx].mean(axis=1)
    return float(np.quantile(differences, 0.025)), float(
        np.quantile(differences, 0.975)
    )


def negclip_loss(
    image_emb: torch.Tensor,
    text_emb: torch.Tensor,
    negative_emb: torch.Tensor,
    scale: float,
) -> torch.Tensor:
    n = len(image_emb)
    labels = torch.arange(n)
    logits_per_image = (
        scale * image_emb @ torch.cat([text_emb, negative_emb]).T
    )  # (n, n+m)
    logits_per_text = scale * text_emb @ image_emb.T  # (n, n)
    return (
        F.cross_entropy(logits_per_image, labels)
        + F.cross_entropy(logits_per_text, labels)
    ) / 2


def swap_colors(caption: str) -> str:
    colors = ["red", "orange", "yellow", "green", "cyan", "blue", "purple", "white"]
    words = caption.split()
    where = [i for i, w in enumerate(words) if w in colors]
    first, second = where
    words[first], words[second] = words[second], words[first]
    for i in (first - 1, second - 1):  # the article before each colour
        words[i] = "an" if words[i + 1][0] in "aeiou" else "a"
    return " ".join(words)


def wise_ft(original: dict, finetuned: dict, alpha: float) -> dict:
    return {k: (1 - alpha) * v + alpha * finetuned[k] for k, v in original.items()}


def few_shot(labels: list[int], k: int) -> list[int]:
    picked = []
    for c in sorted(set(labels)):
        picked += [i for i, y in enumerate(labels) if y == c][:k]
    return picked


def choose_and_report(alphas, validation, test, max_drop):
    """07: choose alpha on validation, report its test scores (test plays no part)."""
    floor = validation[0][1] - max_drop  # the original model's original-task score
    allowed = [i for i, (_, old) in enumerate(validation) if old >= floor]
    best = max(allowed, key=lambda i: validation[i][0])  # first maximum: smaller alpha
    return alphas[best], test[best][0], test[best][1]


# ---- 10 (a third modality) ----


def color_from_sound(waveform, sample_rate: int) -> str:
    """10: the colour whose pitch is nearest the strongest frequency of the sound."""
    import numpy as np

    from ..toy.sound import PITCHES

    mono = np.asarray(waveform).sum(axis=0)  # (n_samples,): both channels
    spectrum = np.abs(np.fft.rfft(mono))
    frequencies = np.fft.rfftfreq(len(mono), d=1 / sample_rate)  # Hz of each bin
    fundamental = frequencies[spectrum.argmax()]
    return min(PITCHES, key=lambda c: abs(math.log(PITCHES[c] / fundamental)))


def chance_recall_at_k(relevance: torch.Tensor, k: int) -> float:
    """10: expected Recall@K of a random ranking, 1 - C(n - r, k) / C(n, k) per query."""
    n = relevance.shape[1]
    misses = [math.comb(n - int(r), k) / math.comb(n, k) for r in relevance.sum(dim=1)]
    return 1 - sum(misses) / len(misses)


# ---- 08 (captioning) and 09 (generation) ----


def one_object_captions() -> list[str]:
    """08: all 320 fully stated one-object captions."""
    colors = ["red", "orange", "yellow", "green", "cyan", "blue", "purple", "white"]
    shapes = ["circle", "square", "triangle", "star", "cross"]
    places = ["on the left", "on the right", "at the top", "at the bottom"]
    return [
        f"a {size} {color} {shape} {place}"  # a size word comes first: always "a"
        for size in ("small", "large")
        for color in colors
        for shape in shapes
        for place in places
    ]


def greedy(score, steps: list) -> dict:
    """08: one attribute at a time, the best value given the earlier choices."""
    chosen = {}
    for key, values in steps:
        chosen[key] = max(values, key=lambda v: score({**chosen, key: v}))
    return chosen


def soft_disc(
    cx: torch.Tensor, cy: torch.Tensor, radius: torch.Tensor, softness: float
) -> torch.Tensor:
    """09: sigmoid((radius - distance) / softness) at every pixel centre, (40, 40)."""
    grid = torch.arange(40, dtype=torch.float32) + 0.5
    distance = torch.sqrt((grid[None, :] - cx) ** 2 + (grid[:, None] - cy) ** 2)
    return torch.sigmoid((radius - distance) / softness)


def best_of_n_curve(
    scores: torch.Tensor, faithful: torch.Tensor, ns: list[int]
) -> list[float]:
    """09: for each n, the faithful share of each prompt's best of its first n."""
    rows = torch.arange(len(scores))
    return [
        faithful[rows, scores[:, :n].argmax(dim=1)].float().mean().item() for n in ns
    ]
