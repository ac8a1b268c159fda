"""Captioning with a shared space: pick the caption the model scores highest.

A CLIP cannot write, but it can *choose*: among candidate captions, the one
whose embedding is nearest the image's. The candidates make the method:

- a pool of captions written for other images (:func:`best_caption`,
  captioning by retrieval) can only say what the pool says;
- every caption a grammar allows, scored at once (exhaustive search, again
  :func:`best_caption`), is exact but costs one text embedding per candidate;
- one decision at a time (:func:`greedy_decode`): embed only the captions one
  attribute longer than the best so far.

:func:`clip_score` is CLIPScore (Hessel et al. 2021), the reference-free
caption metric built on the same cosine. Taught in notebooks/08_captioning.ipynb.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

import torch

from .utils import check_embeddings


def best_caption(
    image_emb: torch.Tensor, text_emb: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """For each image, the candidate caption with the highest cosine.

    Parameters
    ----------
    image_emb : torch.Tensor of shape (n_images, dim), unit rows
    text_emb : torch.Tensor of shape (n_texts, dim), unit rows (the candidates)

    Returns
    -------
    (index, cosine): tensors of shape (n_images,); ties go to the lower index.
    """
    image_emb = check_embeddings(image_emb, "image_emb")
    text_emb = check_embeddings(text_emb, "text_emb")
    best = (image_emb @ text_emb.T).max(dim=1)
    return best.indices, best.values


def clip_score(
    image_emb: torch.Tensor, text_emb: torch.Tensor, *, w: float = 2.5
) -> torch.Tensor:
    """CLIPScore of each (image, caption) pair: ``w * max(cos, 0)``.

    Hessel et al. (2021) chose ``w = 2.5`` for OpenAI's ViT-B/32, whose
    image-caption cosines rarely pass 0.4, to spread the score over about
    [0, 1]; ``w`` rescales only, so rankings do not depend on it.

    Parameters
    ----------
    image_emb, text_emb : torch.Tensor of shape (n, dim), unit rows; row i of
        each is one pair

    Returns
    -------
    torch.Tensor of shape (n,)
    """
    image_emb = check_embeddings(image_emb, "image_emb")
    text_emb = check_embeddings(text_emb, "text_emb")
    if image_emb.shape != text_emb.shape:
        raise ValueError(
            f"image_emb and text_emb must be paired row by row, got shapes "
            f"{tuple(image_emb.shape)} and {tuple(text_emb.shape)}"
        )
    if w <= 0:
        raise ValueError(f"w must be > 0, got {w}")
    return w * (image_emb * text_emb).sum(-1).clamp(min=0)


def greedy_decode(
    image_emb: torch.Tensor,
    *,
    next_choices: Callable[[Hashable | None], Sequence],
    to_text: Callable[[object], str],
    embed: Callable[[list[str]], torch.Tensor],
) -> tuple[list, int]:
    """Build each image's caption one decision at a time, keeping the best.

    Every image starts from ``None``; at each round, its ``next_choices``
    are worded (``to_text``), embedded, and the one with the highest cosine to
    the image is kept, until no choices are left. Texts are embedded once
    for all images (a cache), in one batch per round.

    Parameters
    ----------
    image_emb : torch.Tensor of shape (n_images, dim), unit rows
    next_choices : callable
        Partial caption (or None at the start) -> the partial captions one
        decision further; empty when it is complete
        (e.g. :func:`cmalign.toy.grammar.next_choices`).
    to_text : callable
        Partial caption -> its words (e.g. :func:`cmalign.toy.grammar.wording`).
    embed : callable
        list of texts -> unit embeddings (n_texts, dim), e.g.
        ``lambda t: cmalign.embed_texts(bundle, t, progress=False)``.

    Returns
    -------
    (captions, n_texts): the final partial caption of each image, and how many
    distinct texts were embedded.
    """
    image_emb = check_embeddings(image_emb, "image_emb")
    states: list = [None] * len(image_emb)
    cache: dict[str, torch.Tensor] = {}
    while True:
        options = [list(next_choices(s)) for s in states]
        active = [i for i, o in enumerate(options) if o]
        if not active:
            return states, len(cache)
        new = list(
            dict.fromkeys(
                t for i in active for t in map(to_text, options[i]) if t not in cache
            )
        )
        if new:
            cache.update(zip(new, embed(new)))
        for i in active:
            emb = torch.stack([cache[to_text(c)] for c in options[i]])
            states[i] = options[i][int((emb @ image_emb[i]).argmax())]
