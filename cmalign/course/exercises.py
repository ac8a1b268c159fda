"""Exercise checkers for every lesson, 01 to the last.

One module on purpose: the checkers share one contract and a few helpers
(``_run``, ``_unit``, ``_close``), and a teacher reads them in one place;
it passes 300 lines because each lesson adds its own checkers, not because
it mixes ideas.

Each ``check_*`` function runs the learner's function on fresh inputs and
judges it against something that does not share its code: the library
function the lesson teaches (``losses.clip_loss``, ``optim.warmup_cosine``,
``geometry.modality_gap``, ``metrics.ranks``), autograd, a brute-force loop,
or a property (invariance to feature length, unit rows). The learner's code
runs with the library function it rebuilds unavailable (``_without``, and
``_blocked`` for torch functions such as autograd), so a one-line call of that
function does not pass. It prints a pass/fail
line with a hint in words, returns True/False and never raises, so a notebook
with an unfinished exercise still runs to the end. Reference answers live in
:mod:`cmalign.course.solutions`, which this module never imports;
``tests/test_exercises.py`` proves they pass and that typical mistakes fail.
"""

from __future__ import annotations

import contextlib
import functools
import math
import sys
import zlib
from collections.abc import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from .. import adapt, embed, features, geometry, losses, metrics, optim, stats, train
from ..toy.captions import describe
from ..toy.negatives import perturb
from ..toy.spec import COLORS, SHAPES


def _report(name: str, ok: bool, hint: str) -> bool:
    print(f"✅ {name}: passed" if ok else f"❌ {name}: not yet. Hint: {hint}")
    return ok


def _run(name: str, hint: str, trial: Callable[[], bool]) -> bool:
    try:
        ok = bool(trial())
    except NotImplementedError:
        return _report(name, False, "replace `raise NotImplementedError`. " + hint)
    except Exception as err:  # a learner's bug: report it, keep the notebook running
        return _report(name, False, f"it raised {type(err).__name__}: {err}. {hint}")
    return _report(name, ok, hint)


def _unit(n: int, d: int, g: torch.Generator) -> torch.Tensor:
    return F.normalize(torch.randn(n, d, generator=g), dim=-1)


def _close(a, b, atol: float = 1e-5) -> bool:
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    return a.shape == b.shape and torch.allclose(a.float(), b.float(), atol=atol)


def check_similarity_matrix(fn: Callable) -> bool:
    """01: cosine similarities (n_texts, n_images) from raw features."""
    g = torch.Generator().manual_seed(1)
    image = torch.randn(5, 8, generator=g) * 3
    text = torch.randn(4, 8, generator=g) * 0.2

    def trial() -> bool:
        out = fn(image, text)
        loop = torch.tensor(  # the definition, one pair at a time
            [[float(t @ i / (t.norm() * i.norm())) for i in image] for t in text]
        )
        stretched = fn(image * torch.arange(1.0, 6.0)[:, None], text)  # lengths change
        return _close(out, loop) and _close(stretched, loop)

    return _run(
        "similarity_matrix",
        "a cosine ignores vector length: make every row unit length first. "
        "Rows of the result are texts, columns images.",
        trial,
    )


def _fake_text_encoder(dim: int = 16) -> Callable[[list[str]], torch.Tensor]:
    """A stand-in for ``cmalign.embed_texts``: each string -> a fixed random unit
    vector (seeded by its CRC-32), so only code that uses it agrees with a loop."""

    def encode_text(texts) -> torch.Tensor:
        rows = [
            torch.randn(
                dim, generator=torch.Generator().manual_seed(zlib.crc32(t.encode()))
            )
            for t in texts
        ]
        return F.normalize(torch.stack(rows), dim=-1)

    return encode_text


def check_prompt_ensemble(fn: Callable) -> bool:
    """01: class weights by prompt ensembling, judged by a loop (fake text encoder)."""
    encode_text = _fake_text_encoder()
    classnames = ["red", "green", "blue"]
    templates = ["a {} object", "a photo of a {}.", "there is a {}", "{}"]

    def loop(names: list[str], temps: list[str]) -> torch.Tensor:
        rows = []
        for (
            name
        ) in names:  # one class at a time: mean of its prompts, back to unit length
            prompts = encode_text([t.format(name) for t in temps])
            rows.append(F.normalize(prompts.mean(dim=0), dim=0))
        return torch.stack(rows)

    cases = [
        (classnames, templates),
        (classnames[:2], templates[:1]),
        (["a", "b", "c", "d", "e"], templates[1:3]),
    ]
    want = [loop(list(c), list(t)) for c, t in cases]

    def trial() -> bool:
        with _without(fn, embed.class_embeddings, embed.embed_texts):
            got = [fn(encode_text, list(c), list(t)) for c, t in cases]
        return all(_close(g, w) for g, w in zip(got, want))

    return _run(
        "prompt_ensemble",
        "use the encode_text you are given (it returns unit rows, like "
        "cmalign.embed_texts); put every class name in every template, average "
        "the prompt embeddings of each class over its templates, and bring each "
        "average back to unit length; one row per class, in the order of classnames.",
        trial,
    )


def check_clip_loss(fn: Callable) -> bool:
    """02: the symmetric CLIP loss, judged by a loop over rows and columns, with
    cmalign's losses and F.cross_entropy unavailable to the answer."""
    g = torch.Generator().manual_seed(3)
    cases = [(_unit(n, 5, g), _unit(n, 5, g), s) for n in (7, 3) for s in (1.0, 20.0)]

    def loop(image, text, s) -> float:
        logits = (s * image.double() @ text.double().T).tolist()
        n = len(logits)
        rows = sum(
            math.log(sum(math.exp(x) for x in row)) - row[i]
            for i, row in enumerate(logits)
        )
        cols = sum(
            math.log(sum(math.exp(logits[k][j]) for k in range(n))) - logits[j][j]
            for j in range(n)
        )
        return (rows + cols) / (2 * n)

    want = [loop(*case) for case in cases]

    def trial() -> bool:
        with (
            _without(fn, losses.clip_loss, losses.info_nce),
            _blocked((F, "cross_entropy")),
        ):
            got = [float(fn(*case)) for case in cases]
        return all(
            math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6) for a, b in zip(got, want)
        )

    return _run(
        "clip_loss",
        "scale the image-text cosines; each image must pick its own caption "
        "(softmax over a row) and each caption its own image (softmax over a "
        "column); average the two mean negative log-probabilities. Write it with "
        "log_softmax: cmalign's losses and cross_entropy are switched off while "
        "the checker runs your function.",
        trial,
    )


def check_logits_gradient(fn: Callable) -> bool:
    """02: d(symmetric CLIP loss)/d(logits_per_image), judged against autograd,
    with autograd unavailable to the answer."""
    g = torch.Generator().manual_seed(4)
    cases, want = [], []
    for n in (3, 6):
        logits = torch.randn(n, n, generator=g).requires_grad_()
        loss = (
            F.cross_entropy(logits, torch.arange(n))
            + F.cross_entropy(logits.T, torch.arange(n))
        ) / 2
        (autograd,) = torch.autograd.grad(loss, logits)
        cases.append(logits.detach())
        want.append(autograd)

    def trial() -> bool:
        with _blocked(
            (torch.autograd, "grad"),
            (torch.autograd, "backward"),
            (torch.Tensor, "backward"),
        ):
            got = [fn(logits.clone()) for logits in cases]
        return all(_close(a, b, atol=1e-6) for a, b in zip(got, want))

    return _run(
        "logits_gradient",
        "differentiate each direction separately (probabilities minus the "
        "target, divided by the batch size), mind which axis each softmax runs "
        "over, then average the two directions. Autograd is switched off while "
        "the checker runs your function: write the formula.",
        trial,
    )


def check_lr_at(fn: Callable) -> bool:
    """03: warm-up then cosine with the convention the exercise states (steps from 0),
    judged by the closed form, with cmalign.optim.warmup_cosine unavailable."""
    cases = [
        (0, 100, 10, 1e-3),
        (9, 100, 10, 1e-3),
        (10, 100, 10, 1e-3),
        (55, 100, 10, 1e-3),
        (99, 100, 10, 2.0),
        (0, 50, 0, 1.0),
        (3, 8, 4, 0.5),
    ]

    def closed_form(step: int, total: int, warmup: int, peak: float) -> float:
        if step < warmup:  # step 0 gets peak / warmup; step warmup - 1 the peak
            return peak * (step + 1) / warmup
        return (
            peak
            * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))
            / 2
        )

    want = [closed_form(*case) for case in cases]

    def trial() -> bool:
        with _without(fn, optim.warmup_cosine):
            got = [float(fn(*case)) for case in cases]
        return all(
            math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-12) for a, b in zip(got, want)
        )

    return _run(
        "lr_at",
        "steps count from 0. During warm-up (step below warmup) the rate is the peak "
        "times (step + 1) / warmup, so the last warm-up step reaches the peak; from "
        "step = warmup on it follows half a cosine, from the peak at step = warmup "
        "down towards 0 at step = total.",
        trial,
    )


def check_same_image_positives(fn: Callable) -> bool:
    """03: positives[i, j] = pair j shows the same image as pair i (brute force)."""
    cases = [[3, 1, 3, 0, 1], [2, 2, 2], [0, 1, 2, 3]]
    want = [torch.tensor([[a == b for b in ids] for a in ids]) for ids in cases]

    def trial() -> bool:
        with _without(fn, train.batch_positives):
            got = [torch.as_tensor(fn(torch.tensor(ids))) for ids in cases]
        return all(
            g.dtype == torch.bool and torch.equal(g, w) for g, w in zip(got, want)
        )

    return _run(
        "same_image_positives",
        "compare every pair of image ids in the batch, including each with "
        "itself; the answer is an (n, n) table of True/False (a bool tensor).",
        trial,
    )


def _loop_fixture():
    """A tiny CLIP, three batches and their positives for check_train_loop."""
    from ..toy.model import build_toy_clip

    model, processor = build_toy_clip(seed=3, width=16, vision_layers=1, text_layers=1)
    with torch.no_grad():  # start above the cap, so a loop without the clamp shows
        model.logit_scale.fill_(losses.LOGIT_SCALE_MAX + 0.3)
    g = torch.Generator().manual_seed(10)
    words = ["a red circle", "a blue square", "a green star", "a white cross"]
    batches = []
    for ids in ([0, 1, 2, 0], [3, 1, 1, 2], [2, 0, 3, 1]):
        pixels = torch.randn(
            4, 3, *([model.config.vision_config.image_size] * 2), generator=g
        )
        tokens = processor.tokenizer(
            [words[i] for i in ids], padding=True, return_tensors="pt"
        )
        tokens = {k: tokens[k] for k in ("input_ids", "attention_mask")}
        image_ids = torch.tensor(ids)
        positives = image_ids[:, None] == image_ids[None, :]  # a repeated image counts
        batches.append((pixels[image_ids], tokens, positives))
    return model, batches


def _reference_loop(model, batches, steps: int, lr: float, warmup: int) -> list[float]:
    """The loop the exercise asks for, written with torch alone."""
    decay = [
        p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n
    ]
    plain = [p for n, p in model.named_parameters() if p.ndim < 2 or "embedding" in n]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": 0.1},
            {"params": plain, "weight_decay": 0.0},
        ],
        lr=lr,
        betas=(0.9, 0.98),
        eps=1e-6,
    )

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup))) / 2

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    model.train()
    history = []
    for step in range(1, steps + 1):
        pixels, tokens, positives = batches[(step - 1) % len(batches)]
        u = F.normalize(
            features.projected(model.get_image_features(pixel_values=pixels)), dim=-1
        )
        v = F.normalize(features.projected(model.get_text_features(**tokens)), dim=-1)
        logits = model.logit_scale.exp() * u @ v.T  # (images, texts)
        target = positives.float()
        rows = (
            -(target / target.sum(1, keepdim=True) * logits.log_softmax(1))
            .sum(1)
            .mean()
        )
        cols = (
            -(target.T / target.T.sum(1, keepdim=True) * logits.T.log_softmax(1))
            .sum(1)
            .mean()
        )
        loss = (rows + cols) / 2
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0.0, losses.LOGIT_SCALE_MAX)
        scheduler.step()
        history.append(loss.item())
    model.eval()
    return history


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run a tiny model on one thread: its small ops only wait on a second one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@functools.lru_cache(maxsize=1)
def _reference_run(steps: int, lr: float, warmup: int):
    reference, batches = _loop_fixture()
    with _one_thread():
        losses_ = _reference_loop(reference, batches, steps, lr, warmup)
    return losses_, reference.state_dict(), batches


def check_train_loop(fn: Callable) -> bool:
    """03: the training loop, judged step by step against a loop written with torch
    alone (same model, same batches), with cmalign.train's loops unavailable."""
    steps, lr, warmup = 4, 0.02, 2

    def trial() -> bool:
        want, weights, batches = _reference_run(steps, lr, warmup)
        model, _ = _loop_fixture()

        def next_batch(step: int):
            return batches[(step - 1) % len(batches)]

        with _without(fn, train.train_step, train.train_loop, train.fit), _one_thread():
            got = fn(model, next_batch, steps, lr, warmup)
        got = [float(x) for x in got]
        same_losses = len(got) == steps and all(
            math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-5) for a, b in zip(got, want)
        )
        mine = model.state_dict()
        same_weights = all(_close(mine[k], weights[k], atol=1e-4) for k in weights)
        return same_losses and same_weights and not model.training

    return _run(
        "train_loop",
        "build AdamW from param_groups (weight decay 0.1, betas 0.9 and 0.98, eps "
        "1e-6) and a LambdaLR with warmup_cosine; then, for step 1 to steps: take the "
        "batch, embed both towers, compute clip_loss with the batch's positives at "
        "the model's current scale, zero the gradients, backpropagate, step, clamp "
        "the log-scale, step the schedule and keep the loss; leave the model in eval "
        "mode and return the list of losses.",
        trial,
    )


def check_centroid_gap(fn: Callable) -> bool:
    """04: centroid distance, judged by a plain computation, with cmalign.geometry
    unavailable to the answer."""
    g = torch.Generator().manual_seed(5)
    image, text = F.normalize(_unit(30, 4, g) + 0.5, dim=-1), _unit(20, 4, g)
    expected = float((image.double().mean(0) - text.double().mean(0)).norm())

    def trial() -> bool:
        with _without(fn, geometry.modality_gap, geometry.shift_gap):
            got = float(fn(image, text))
        return math.isclose(got, expected, rel_tol=1e-5)

    return _run(
        "centroid_gap",
        "average each modality over its rows (the two sets may differ in size), "
        "then measure the length of the difference.",
        trial,
    )


def check_close_gap(fn: Callable) -> bool:
    """04: shift both modalities halfway along the gap; properties and a loop."""
    g = torch.Generator().manual_seed(6)
    image, text = F.normalize(_unit(30, 4, g) + 0.5, dim=-1), _unit(20, 4, g)
    gap = image.mean(0) - text.mean(0)
    rows_i = torch.stack([(u - gap / 2) / (u - gap / 2).norm() for u in image])
    rows_t = torch.stack([(v + gap / 2) / (v + gap / 2).norm() for v in text])

    def trial() -> bool:
        with _without(fn, geometry.modality_gap, geometry.shift_gap):
            new_image, new_text = fn(image, text)
        unit = all(
            _close(x.norm(dim=1), torch.ones(len(x))) for x in (new_image, new_text)
        )
        return unit and _close(new_image, rows_i) and _close(new_text, rows_t)

    return _run(
        "close_gap",
        "move the images half the gap towards the texts and the texts half the "
        "gap towards the images, so their centroids meet; then put every row "
        "back on the unit sphere.",
        trial,
    )


# ---- 05 to 07: the learner's code runs with the function it rebuilds unavailable ----


class LibraryCallError(Exception):
    """The learner's answer called the library function the exercise asks it to write."""


@contextlib.contextmanager
def _without(fn: Callable, *library: Callable) -> Iterator[None]:
    """Run ``fn`` with every function of ``library`` unavailable to it.

    Any name bound to one of them in ``fn``'s globals (the notebook's
    namespace: ``from cmalign.adapt import interpolate_weights``) and in every
    loaded ``cmalign`` module (``cmalign.adapt.interpolate_weights``) is
    swapped for a stub that raises :class:`LibraryCallError`, and put back on
    exit. The checker computes its reference outside this block.
    """

    def stub_for(original: Callable) -> Callable:
        where = f"{original.__module__}.{original.__qualname__}"

        def stub(*args, **kwargs):
            raise LibraryCallError(
                f"write it without calling {where}: that is the function this "
                "exercise rebuilds (it is the reference the checker compares with)."
            )

        return stub

    namespaces = [getattr(fn, "__globals__", {})] + [
        vars(module)
        for name, module in list(sys.modules.items())
        if module is not None and (name == "cmalign" or name.startswith("cmalign."))
    ]
    swapped = []
    for original in library:
        stub = stub_for(original)
        for namespace in namespaces:
            for key, value in list(namespace.items()):
                if value is original:
                    swapped.append((namespace, key, value))
                    namespace[key] = stub
    try:
        yield
    finally:
        for namespace, key, value in reversed(swapped):
            namespace[key] = value


@contextlib.contextmanager
def _blocked(*attributes: tuple[object, str]) -> Iterator[None]:
    """Make ``getattr(owner, name)`` raise :class:`LibraryCallError` for each pair,
    for functions reached through a module or class (``F.cross_entropy``,
    ``torch.autograd.grad``, ``Tensor.backward``) rather than a name
    :func:`_without` can swap; put back on exit."""
    saved = [(owner, name, getattr(owner, name)) for owner, name in attributes]

    def stub_for(owner: object, name: str) -> Callable:
        where = f"{getattr(owner, '__name__', type(owner).__name__)}.{name}"

        def stub(*args, **kwargs):
            raise LibraryCallError(
                f"write it without calling {where}: the exercise asks for it by hand"
            )

        return stub

    for owner, name, _ in saved:
        setattr(owner, name, stub_for(owner, name))
    try:
        yield
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


_RANKING = (
    metrics.ranks,
    metrics.retrieval_ranks,
    metrics.retrieval_metrics,
    metrics.rank_summary,
    metrics._ranks_and_ties,
)


def check_recall_at_k(fn: Callable) -> bool:
    """05: Recall@K, judged against a brute-force loop over sorted rows."""
    g = torch.Generator().manual_seed(7)
    sim = torch.randn(15, 12, generator=g)  # distinct scores: no ties to break
    rel = torch.rand(15, 12, generator=g) < 0.2

    def loop(k: int) -> float:
        hits = 0
        for row, relevant in zip(sim.tolist(), rel.tolist()):
            order = sorted(range(len(row)), key=lambda j, r=row: -r[j])
            hits += any(relevant[j] for j in order[:k])
        return hits / len(sim)

    def trial() -> bool:
        with _without(fn, *_RANKING):
            got = {k: float(fn(sim, rel, k)) for k in (1, 3, 5)}
        return all(math.isclose(got[k], loop(k), rel_tol=1e-6) for k in got)

    return _run(
        "recall_at_k",
        "for each query (row), look at its k highest-scoring items and ask "
        "whether any of them is relevant; average over queries.",
        trial,
    )


def check_best_rank(fn: Callable) -> bool:
    """05: rank of the best relevant item, ties counted against the query;
    judged against cmalign.metrics.ranks and a hand-worked example."""
    g = torch.Generator().manual_seed(8)
    sim = torch.randint(0, 4, (10, 7), generator=g).float()  # many exact ties
    rel = torch.rand(10, 7, generator=g) < 0.3
    rel[:, 0] |= ~rel.any(dim=1)  # every query has a relevant item
    tie = torch.tensor([[0.9, 0.5, 0.9], [0.1, 0.2, 0.3]])
    tie_rel = torch.tensor([[True, False, False], [True, False, True]])
    reference = metrics.ranks(sim, rel)

    def trial() -> bool:
        with _without(fn, *_RANKING):
            got = torch.as_tensor(fn(sim, rel)).long()
            hand = torch.as_tensor(fn(tie, tie_rel)).long().tolist()
        return torch.equal(got, reference) and hand == [2, 1]

    return _run(
        "best_rank",
        "find each row's best relevant score; count the irrelevant items that "
        "score at least as high (a tie counts against the query) and add one, "
        "so that the best possible rank is 1.",
        trial,
    )


def check_paired_interval(fn: Callable) -> bool:
    """05: percentile-bootstrap interval of mean(a) - mean(b) on the same queries.

    Judged against the normal approximation of the paired difference (its
    standard error is that of the per-query differences), on a case where
    pairing decides whether the interval excludes 0."""
    base = (np.arange(400) % 2).astype(float)  # method B: half the queries hit
    better = base.copy()
    better[np.flatnonzero(base == 0)[:20]] = 1.0  # A fixes 20 of them, breaks none
    diff = better - base
    se = diff.std() / math.sqrt(len(diff))
    want = (diff.mean() - 1.96 * se, diff.mean() + 1.96 * se)  # about [0.029, 0.071]

    def trial() -> bool:
        with _without(fn, stats.bootstrap_ci, stats.paired_difference_ci):
            low, high = (float(x) for x in fn(better, base))
            same = [float(x) for x in fn(base, base)]
            low_r, high_r = (float(x) for x in fn(base, better))
        return (
            abs(low - want[0]) < 0.006  # Monte Carlo and binomial steps: ~0.003
            and abs(high - want[1]) < 0.006
            and max(abs(x) for x in same) < 1e-12
            and math.isclose(low_r, -high, abs_tol=0.006)
            and math.isclose(high_r, -low, abs_tol=0.006)
        )

    return _run(
        "paired_interval",
        "draw query indices with replacement, the same indices for both methods, "
        "and take the difference of the two means on each resample; the interval "
        "runs from the 2.5th to the 97.5th percentile of those differences. "
        "Resampling the two methods separately forgets that they answered the "
        "same queries and gives a far wider interval.",
        trial,
    )


def check_negclip_loss(fn: Callable) -> bool:
    """06: CLIP's loss with hard-negative captions as extra image->text columns."""
    g = torch.Generator().manual_seed(6)
    image, text, negatives = _unit(6, 8, g), _unit(6, 8, g), _unit(4, 8, g)
    with_negatives = losses.clip_loss(image, text, 30.0, hard_negatives=negatives)
    without = losses.clip_loss(image, text, 30.0)

    def trial() -> bool:
        with _without(fn, losses.clip_loss, losses.info_nce):
            ours = fn(image, text, negatives, 30.0)
            none = fn(image, text, negatives[:0], 30.0)
        return _close(ours, with_negatives) and _close(none, without)

    return _run(
        "negclip_loss",
        "score every image against the negative captions too, with the same "
        "scale, as extra columns of the image-to-text logits only; the "
        "text-to-image cross-entropy is unchanged; average the two.",
        trial,
    )


def _random_spec(rng: np.random.Generator) -> dict:
    colors = rng.choice(list(COLORS), 2, replace=False)
    shapes = rng.choice(SHAPES, 2, replace=False)
    return {
        "objects": [
            {"color": str(c), "shape": str(s), "size": None, "position": None}
            for c, s in zip(colors, shapes)
        ],
        "relation": ("horizontal", "vertical")[rng.integers(2)],
    }


def check_swap_colors(fn: Callable) -> bool:
    """06: "a red circle to the left of a blue square" -> "a blue circle to the left of a red square"."""
    rng = np.random.default_rng(7)
    cases = []
    for _ in range(40):
        spec = _random_spec(rng)
        cases.append(
            (
                describe(spec, rng, "forward"),
                describe(perturb(spec, "swap_colors", rng), rng, "forward"),
            )
        )

    def trial() -> bool:
        with _without(fn, perturb, describe):
            got = [fn(text) for text, _ in cases]
        return got == [want for _, want in cases]

    return _run(
        "swap_colors",
        "exchange the two colour words and leave everything else in place; "
        "mind the article: 'an orange' becomes 'a red' and back.",
        trial,
    )


def check_wise_ft(fn: Callable) -> bool:
    """07: (1 - alpha) * original + alpha * finetuned, tensor by tensor."""
    g = torch.Generator().manual_seed(8)
    a = {"w": torch.randn(3, 4, generator=g), "b": torch.randn(4, generator=g)}
    b = {k: v + torch.randn(v.shape, generator=g) for k, v in a.items()}
    alphas = (0.0, 0.3, 1.0)
    reference = [adapt.interpolate_weights(a, b, alpha) for alpha in alphas]

    def trial() -> bool:
        with _without(fn, adapt.interpolate_weights):
            got = [fn(a, b, alpha) for alpha in alphas]
        return all(
            set(mine) == set(want) and all(_close(mine[k], want[k]) for k in want)
            for mine, want in zip(got, reference)
        )

    return _run(
        "wise_ft",
        "alpha = 0 must give the original weights, alpha = 1 the fine-tuned ones; "
        "mix every tensor of the state dict the same way.",
        trial,
    )


def check_few_shot(fn: Callable) -> bool:
    """07: k examples of every class, each index once."""
    labels = [c for c in range(5) for _ in range(3 + 2 * c)]

    def trial() -> bool:
        for k in (1, 3):
            with _without(fn, adapt.few_shot_indices):
                picked = [int(i) for i in fn(labels, k)]
            counts = np.bincount([labels[i] for i in picked], minlength=5)
            if len(set(picked)) != len(picked) or not (counts == k).all():
                return False
        return True

    return _run(
        "few_shot",
        "for each class, take k of the indices whose label is that class "
        "(not the first k indices overall).",
        trial,
    )


def check_choose_and_report(fn: Callable) -> bool:
    """07: choose alpha on validation scores (the best new-task score that keeps
    the original task within ``max_drop``), report its test scores.

    Judged by brute force on curves where choosing on test, ignoring the
    constraint or measuring the drop from the wrong model all give another
    answer."""
    rng = np.random.default_rng(9)
    alphas = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]

    def brute(validation, test, max_drop):
        floor = validation[0][1] - max_drop
        allowed = [i for i, (_, old) in enumerate(validation) if old >= floor - 1e-12]
        best = max(validation[i][0] for i in allowed)
        i = min(i for i in allowed if validation[i][0] >= best - 1e-12)
        return alphas[i], test[i][0], test[i][1]

    cases = []
    while len(cases) < 24:
        new = 0.3 + np.cumsum(rng.integers(1, 12, len(alphas))) / 100  # rises
        old = (
            0.95 - np.cumsum(rng.integers(0, 4, len(alphas))) / 100
        )  # falls slowly ...
        old[0] = 0.95
        old[1] += 0.03 * rng.integers(0, 2)  # ... after a rise, half the time
        validation = [(float(a), float(b)) for a, b in zip(new, old)]
        test = [tuple(rng.integers(0, 100, 2) / 100) for _ in alphas]
        max_drop = float(rng.choice([0.005, 0.015, 0.025, 0.045]))  # off the grid
        news = [n for n, _ in validation]
        if len(set(news)) == len(news):  # no ties on the new task but the planned one
            cases.append((validation, test, max_drop))
    # the drop is measured from alpha = 0, not from the best original score
    rise = [(0.5, 0.90), (0.6, 0.93), (0.7, 0.89), (0.8, 0.88), (0.85, 0.8), (0.9, 0.7)]
    cases.append((rise, [(0.3, 0.4)] * 6, 0.015))
    # a tie on the new task within the allowed range: the smaller alpha wins
    tie = [(0.5, 0.9), (0.6, 0.9), (0.6, 0.9), (0.9, 0.5), (0.9, 0.4), (0.9, 0.3)]
    cases.append((tie, [(0.1, 0.2)] * 6, 0.01))

    def trial() -> bool:
        with _without(fn, adapt.choose_alpha):
            got = [fn(alphas, validation, test, d) for validation, test, d in cases]
        return all(
            len(mine) == 3
            and all(math.isclose(float(x), y) for x, y in zip(mine, want))
            for mine, want in zip(got, (brute(*case) for case in cases))
        )

    return _run(
        "choose_and_report",
        "keep the alphas whose *validation* original-task score is at most "
        "max_drop below that of alpha = 0; among them take the best validation "
        "new-task score (the smaller alpha on a tie); return that alpha with its "
        "*test* scores, which play no part in the choice.",
        trial,
    )


# ---- 10 (a third modality): judged against the scenes and by counting ----


def check_color_from_sound(fn: Callable) -> bool:
    """10: the colour of a one-object sound, read from its pitch; judged against
    the colour of the scene the sound was made from, at two sample rates."""
    from ..toy.sound import sonify
    from ..toy.spec import SIZES

    rng = np.random.default_rng(10)

    def trial() -> bool:
        for rate in (8000, 16000):
            for _ in range(20):
                obj = {
                    "color": str(rng.choice(list(COLORS))),
                    "shape": str(rng.choice(SHAPES)),
                    "size": str(rng.choice(list(SIZES))),
                    "center": tuple(rng.uniform(9, 31, size=2)),
                }
                if fn(sonify([obj], rng, sample_rate=rate), rate) != obj["color"]:
                    return False
        return True

    return _run(
        "color_from_sound",
        "the fundamental is the strongest partial of every timbre: find the "
        "frequency in Hz (not the FFT bin number) with the most energy, using "
        "the sample rate you are given, then return the colour whose pitch in "
        "sound.PITCHES is nearest (compare ratios: the pitches are evenly "
        "spaced in log frequency).",
        trial,
    )


def check_chance_recall_at_k(fn: Callable) -> bool:
    """10: expected Recall@K of a random ranking; judged by counting every set of
    K items a random ranking could put on top, and a hand-worked example."""
    import itertools

    g = torch.Generator().manual_seed(10)
    relevance = torch.rand(12, 7, generator=g) < 0.25
    relevance[:, 0] |= ~relevance.any(dim=1)  # every query has a relevant item
    relevance = relevance[:, torch.randperm(7, generator=g)]

    def counted(k: int) -> float:
        tops = [list(top) for top in itertools.combinations(range(7), k)]
        return float(
            np.mean([[bool(row[top].any()) for top in tops] for row in relevance])
        )

    def trial() -> bool:
        hand = torch.tensor([[True, False, False, False], [True, True, False, False]])
        # K = 2: query 1 is hit by 3 of the 6 pairs of items, query 2 by 5 of them
        if not math.isclose(float(fn(hand, 2)), (3 / 6 + 5 / 6) / 2, rel_tol=1e-6):
            return False
        return all(
            math.isclose(float(fn(relevance, k)), counted(k), rel_tol=1e-6)
            for k in (1, 2, 3, 7)
        )

    return _run(
        "chance_recall_at_k",
        "a random ranking misses a query when all K of its top items are "
        "irrelevant: with n items of which r are relevant, that happens with "
        "probability C(n - r, K) / C(n, K) (math.comb). Average the hit "
        "probability over the queries; it is not K * r / n, which counts "
        "rankings with two relevant items on top twice.",
        trial,
    )


# ---- 08 (captioning) and 09 (generation) ----


def check_one_object_captions(fn: Callable) -> bool:
    """08: every fully stated one-object caption, worded as the world words it."""
    from ..toy import grammar
    from ..toy.spec import POSITION_WORDS, SIZES
    from ..toy.world import make_dataset, relevance_matrix

    def parse(caption: str) -> dict | None:
        words = caption.split()
        found = {}
        for key, names in (("size", SIZES), ("color", COLORS), ("shape", SHAPES)):
            hits = [w for w in words if w in names]
            if len(hits) != 1:
                return None
            found[key] = hits[0]
        places = [p for p, phrase in POSITION_WORDS.items() if caption.endswith(phrase)]
        if len(places) != 1:
            return None
        found["position"] = places[0]
        return {"objects": [found], "relation": None}

    def trial() -> bool:
        with _without(fn, grammar.full_specs, grammar.wording):
            captions = [str(c) for c in fn()]
        if len(captions) != 2 * len(COLORS) * len(SHAPES) * 4:
            return False
        if len(set(captions)) != len(captions):
            return False
        specs = [parse(c) for c in captions]
        if None in specs:
            return False
        rng = np.random.default_rng(0)
        if any(describe(s, rng, "forward") != c for s, c in zip(specs, captions)):
            return False  # not the world's wording (articles, word order)
        scenes = make_dataset(300, seed=8080, split="test")
        singles = [a for a in scenes.attributes if len(a["objects"]) == 1]
        fits = relevance_matrix(specs, singles)  # (captions, scenes), the world's say
        return bool((fits.sum(dim=0) == 1).all())

    return _run(
        "one_object_captions",
        "one caption per combination of size, colour, shape and position, each "
        "once, worded like the world: article, size, colour, shape, then the "
        'place, as in "a large orange circle on the left".',
        trial,
    )


def check_greedy(fn: Callable) -> bool:
    """08: decide attributes in order, each by the best score given the earlier ones."""
    from .. import captioning

    g = torch.Generator().manual_seed(80)
    steps = [("a", [0, 1, 2]), ("b", [0, 1, 2, 3]), ("c", [0, 1])]
    weights = {k: torch.randn(len(v), generator=g).tolist() for k, v in steps}
    table = {  # a score where looking ahead would choose differently
        (("a", 0),): 1.0,
        (("a", 1),): 0.9,
        (("b", 0),): 2.0,
        (("b", 1),): 1.0,
        (("a", 0), ("b", 0)): 1.0,
        (("a", 0), ("b", 1)): 1.1,
        (("a", 1), ("b", 0)): 0.0,
        (("a", 1), ("b", 1)): 5.0,
    }

    def trial() -> bool:
        calls = []

        def additive(choice: dict) -> float:
            calls.append(dict(choice))
            return sum(weights[k][v] for k, v in choice.items())

        best = {
            k: max(range(len(v)), key=lambda i, k=k: weights[k][i]) for k, v in steps
        }
        with _without(fn, captioning.greedy_decode):
            answer = dict(fn(additive, steps))
            tricky = dict(
                fn(
                    lambda c: table[tuple(sorted(c.items()))],
                    [("a", [0, 1]), ("b", [0, 1])],
                )
            )
        if answer != best:
            return False
        if len(calls) > sum(len(v) for _, v in steps):
            return False  # greedy tries each value of each attribute once
        return tricky == {"a": 0, "b": 1}

    return _run(
        "greedy",
        "take the attributes in the order given; for each, score every value "
        "together with the choices already made, keep the best and move on. "
        "Never go back, and never score an attribute on its own.",
        trial,
    )


def check_soft_disc(fn: Callable) -> bool:
    """09: a soft disc mask (40, 40), differentiable in its centre and radius."""
    from ..toy import soft_draw

    def coverage(cx: float, cy: float, r: float) -> torch.Tensor:
        sub = (torch.arange(40 * 8, dtype=torch.float64) + 0.5) / 8  # 8x8 per pixel
        inside = (sub[None, :] - cx) ** 2 + (sub[:, None] - cy) ** 2 < r**2
        return inside.double().view(40, 8, 40, 8).mean(dim=(1, 3))

    def trial() -> bool:
        for cx0, cy0, r0 in ((17.3, 21.6, 5.0), (10.0, 30.0, 3.0), (22.5, 14.2, 9.0)):
            cx, cy, r = (torch.tensor(v, requires_grad=True) for v in (cx0, cy0, r0))
            with _without(fn, soft_draw.shape_distances, soft_draw.soft_render):
                mask = fn(cx, cy, r, 0.5)
            if tuple(mask.shape) != (40, 40) or mask.min() < 0 or mask.max() > 1:
                return False
            exact = coverage(cx0, cy0, r0)
            if (mask.detach().double() - exact).abs().mean() > 0.02:
                return False  # wrong place, size or orientation
            mask.sum().backward()
            ring = 2 * math.pi * r0  # d(area)/d(radius)
            if r.grad is None or abs(float(r.grad) - ring) > 0.1 * ring:
                return False
            if cx.grad is None or abs(float(cx.grad)) > 0.05 * ring:
                return False
        return True

    return _run(
        "soft_disc",
        "each pixel's value is a smooth step of (radius minus the distance from "
        "the pixel's centre, at column + 0.5 and row + 0.5, to the disc's "
        "centre), divided by the softness: 1 well inside, 0 well outside, "
        "in between on the edge. Rows are y, columns x. A hard threshold "
        "has no gradient.",
        trial,
    )


def check_best_of_n_curve(fn: Callable) -> bool:
    """09: share of prompts whose best-scoring image of the first n is faithful."""
    from .. import generation

    g = torch.Generator().manual_seed(90)
    scores = torch.randn(30, 50, generator=g)
    faithful = (scores + torch.randn(30, 50, generator=g)) > 1.0
    ns = [1, 3, 10, 50]

    def trial() -> bool:
        hand_scores = torch.tensor([[0.1, 0.9, 0.5], [0.7, 0.2, 0.8]])
        hand_faithful = torch.tensor([[True, False, True], [False, True, True]])
        # n=1: candidate 0 of each (1 of 2 faithful); n=2: 1 and 0 (neither);
        # n=3: 1 and 2 (one faithful)
        with _without(fn, generation.best_of_n):
            hand = [float(v) for v in fn(hand_scores, hand_faithful, [1, 2, 3])]
            answer = [float(v) for v in fn(scores, faithful, ns)]
        if not np.allclose(hand, [0.5, 0.0, 0.5]):
            return False
        loop = []
        for n in ns:
            picked = [
                faithful[p, int(np.argmax(scores[p, :n].numpy()))] for p in range(30)
            ]
            loop.append(float(np.mean(picked)))
        return np.allclose(answer, loop)

    return _run(
        "best_of_n_curve",
        "for each n and each prompt, look only at the first n candidates, take "
        "the one with the highest score (not one you know is faithful), and ask "
        "whether it is faithful; average over the prompts.",
        trial,
    )
