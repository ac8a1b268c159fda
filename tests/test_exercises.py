"""Every reference answer passes its checker; typical mistakes fail it.

The checkers (cmalign.course.exercises) never import the answers (cmalign.course.solutions),
so these tests would fail if an answer were wrong: each checker judges
against the library, autograd, a brute-force loop or a property.
"""

import ast
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cmalign.course import exercises, solutions

NAMES = [
    "similarity_matrix",
    "prompt_ensemble",
    "clip_loss",
    "logits_gradient",
    "lr_at",
    "same_image_positives",
    "train_loop",
    "centroid_gap",
    "close_gap",
    "recall_at_k",
    "best_rank",
    "paired_interval",
    "negclip_loss",
    "swap_colors",
    "wise_ft",
    "few_shot",
    "choose_and_report",
    # lessons 08-10 (their typical mistakes: tests/test_exercises_08_09.py, _10.py)
    "one_object_captions",
    "greedy",
    "soft_disc",
    "best_of_n_curve",
    "color_from_sound",
    "chance_recall_at_k",
]


def check(name, fn):
    return getattr(exercises, f"check_{name}")(fn)


@pytest.mark.parametrize("name", NAMES)
def test_reference_answers_pass(name, capsys):
    assert check(name, getattr(solutions, name)) is True
    assert "passed" in capsys.readouterr().out


def test_the_checkers_never_see_the_answers():
    tree = ast.parse(Path(exercises.__file__).read_text())
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom | ast.Import)
        for alias in node.names
    }
    assert not {"solutions", "cmalign.course.solutions"} & imported


@pytest.mark.parametrize("name", NAMES)
def test_unfinished_answers_fail_with_a_hint_in_words(name, capsys):
    def unfinished(*args):
        raise NotImplementedError

    assert check(name, unfinished) is False
    out = capsys.readouterr().out
    assert "Hint" in out
    hint = out.split("Hint:", 1)[1]
    for code in ("@", ".T", "dim=", "softmax(", "topk", "normalize(", "[:, None]"):
        assert code not in hint, f"the hint gives code away: {code}"


# Typical mistakes, one or more per exercise: each must fail its checker.
def _sim_unnormalised(image, text):
    return text @ image.T


def _sim_wrong_orientation(image, text):
    return F.normalize(image, dim=-1) @ F.normalize(text, dim=-1).T


def _ensemble_not_renormalised(encode_text, classnames, templates):
    prompts = [t.format(c) for c in classnames for t in templates]
    return encode_text(prompts).view(len(classnames), len(templates), -1).mean(dim=1)


def _ensemble_wrong_grouping(encode_text, classnames, templates):
    prompts = [t.format(c) for c in classnames for t in templates]  # class-major...
    emb = encode_text(prompts).view(len(templates), len(classnames), -1)  # ...read back
    return F.normalize(emb.mean(dim=0), dim=-1)  # template-major: classes mixed


def _ensemble_first_template_only(encode_text, classnames, templates):
    return encode_text([templates[0].format(c) for c in classnames])


def _loss_one_directional(image, text, scale):
    logits = scale * image @ text.T
    return -logits.log_softmax(dim=1).diagonal().mean()


def _loss_unscaled(image, text, scale):
    logits = image @ text.T
    rows = -logits.log_softmax(dim=1).diagonal().mean()
    return (rows - logits.log_softmax(dim=0).diagonal().mean()) / 2


def _loss_summed(image, text, scale):
    logits = scale * image @ text.T
    rows = -logits.log_softmax(dim=1).diagonal().mean()
    return rows - logits.log_softmax(dim=0).diagonal().mean()


def _grad_missing_half(logits):
    n = len(logits)
    return (logits.softmax(1) + logits.softmax(0) - 2 * torch.eye(n)) / n


def _grad_rows_only(logits):
    n = len(logits)
    return (logits.softmax(1) - torch.eye(n)) / n


def _grad_same_axis_twice(logits):
    n = len(logits)
    return (2 * logits.softmax(1) - 2 * torch.eye(n)) / (2 * n)


def _lr_no_warmup(step, total, warmup, peak):
    return peak * 0.5 * (1 + math.cos(math.pi * step / total))


def _lr_warmup_off_by_one(step, total, warmup, peak):
    if step < warmup:
        return peak * step / warmup
    return peak * 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))


def _positives_diagonal_only(ids):
    return torch.eye(len(ids), dtype=torch.bool)


def _loop(
    model,
    next_batch,
    steps,
    lr,
    warmup,
    *,
    clamp=True,
    zero_grad=True,
    schedule=True,
    positives=True,
    groups=True,
    schedule_first=False,
):
    """The reference loop with one piece left out or changed (a typical mistake)."""
    from cmalign.features import image_features, text_features
    from cmalign.losses import clamp_logit_scale_, clip_loss
    from cmalign.optim import param_groups, warmup_cosine

    params = param_groups(model, 0.1) if groups else model.parameters()
    optimizer = torch.optim.AdamW(
        params, lr=lr, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.1
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(steps, warmup)
    )
    model.train()
    history = []
    for step in range(1, steps + 1):
        pixels, tokens, pos = next_batch(step)
        loss = clip_loss(
            image_features(model, pixels),
            text_features(model, **tokens),
            model.logit_scale.exp(),
            positives=pos if positives else None,
        )
        if zero_grad:
            optimizer.zero_grad()
        loss.backward()
        if schedule and schedule_first:
            scheduler.step()
        optimizer.step()
        if clamp:
            clamp_logit_scale_(model.logit_scale)
        if schedule and not schedule_first:
            scheduler.step()
        history.append(loss.item())
    model.eval()
    return history


def _loop_without_clamp(*args):
    return _loop(*args, clamp=False)


def _loop_without_zero_grad(*args):
    return _loop(*args, zero_grad=False)


def _loop_without_schedule(*args):
    return _loop(*args, schedule=False)


def _loop_schedule_before_step(*args):
    return _loop(*args, schedule_first=True)


def _loop_plain_targets(*args):
    return _loop(*args, positives=False)


def _loop_decays_everything(*args):
    return _loop(*args, groups=False)


def _gap_of_first_rows(image, text):
    return float((image[: len(text)] - text).mean(0).norm())


def _gap_mean_distance(image, text):
    return float(torch.cdist(image, text).mean())


def _close_gap_no_renormalise(image, text):
    gap = image.mean(0) - text.mean(0)
    return image - gap / 2, text + gap / 2


def _close_gap_wrong_sign(image, text):
    gap = image.mean(0) - text.mean(0)
    return F.normalize(image + gap / 2, dim=-1), F.normalize(text - gap / 2, dim=-1)


def _recall_top1_only(sim, rel, k):
    return float(rel.gather(1, sim.argmax(1, keepdim=True)).float().mean())


def _recall_lowest_scores(sim, rel, k):
    top = sim.topk(k, dim=1, largest=False).indices
    return float(rel.gather(1, top).any(dim=1).float().mean())


def _rank_zero_based(sim, rel):
    return solutions.best_rank(sim, rel) - 1


def _rank_ties_in_favour(sim, rel):
    best = sim.masked_fill(~rel, float("-inf")).max(dim=1).values
    return ((sim > best[:, None]) & ~rel).sum(dim=1) + 1


def _negclip_unscaled_negatives(image, text, negatives, scale):
    n = len(image)
    rows = torch.cat([scale * image @ text.T, image @ negatives.T], dim=1)
    labels = torch.arange(n)
    cols = scale * text @ image.T
    return (F.cross_entropy(rows, labels) + F.cross_entropy(cols, labels)) / 2


def _negclip_ignored(image, text, negatives, scale):
    return solutions.clip_loss(image, text, scale)


def _swap_keeps_articles(caption):
    words = caption.split()
    colors = ["red", "orange", "yellow", "green", "cyan", "blue", "purple", "white"]
    a, b = [i for i, w in enumerate(words) if w in colors]
    words[a], words[b] = words[b], words[a]
    return " ".join(words)


def _swap_shapes_instead(caption):
    words = caption.split()
    shapes = ["circle", "square", "triangle", "star", "cross"]
    a, b = [i for i, w in enumerate(words) if w in shapes]
    words[a], words[b] = words[b], words[a]
    return " ".join(words)


def _wise_ft_reversed(original, finetuned, alpha):
    return {k: alpha * v + (1 - alpha) * finetuned[k] for k, v in original.items()}


def _few_shot_first_indices(labels, k):
    return list(range(k * len(set(labels))))


def _paired_resampled_separately(a, b, n_resamples=2000, seed=0):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    rng = np.random.default_rng(seed)
    ia = rng.integers(0, len(a), size=(n_resamples, len(a)))
    ib = rng.integers(0, len(b), size=(n_resamples, len(b)))
    d = a[ia].mean(1) - b[ib].mean(1)
    return float(np.quantile(d, 0.025)), float(np.quantile(d, 0.975))


def _paired_without_replacement(a, b, n_resamples=2000, seed=0):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    rng = np.random.default_rng(seed)
    d = [(a[p] - b[p]).mean() for p in (rng.permutation(len(a)) for _ in range(200))]
    return float(np.quantile(d, 0.025)), float(np.quantile(d, 0.975))


def _paired_one_standard_error(a, b, n_resamples=2000, seed=0):
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    se = d.std() / np.sqrt(len(d))
    return float(d.mean() - se), float(d.mean() + se)


def _choose_on_test(alphas, validation, test, max_drop):
    floor = test[0][1] - max_drop
    allowed = [i for i, (_, old) in enumerate(test) if old >= floor]
    best = max(allowed, key=lambda i: test[i][0])
    return alphas[best], test[best][0], test[best][1]


def _choose_reports_validation(alphas, validation, test, max_drop):
    floor = validation[0][1] - max_drop
    allowed = [i for i, (_, old) in enumerate(validation) if old >= floor]
    best = max(allowed, key=lambda i: validation[i][0])
    return alphas[best], validation[best][0], validation[best][1]


def _choose_ignores_the_constraint(alphas, validation, test, max_drop):
    best = max(range(len(alphas)), key=lambda i: validation[i][0])
    return alphas[best], test[best][0], test[best][1]


def _choose_drop_from_the_best(alphas, validation, test, max_drop):
    floor = max(old for _, old in validation) - max_drop
    allowed = [i for i, (_, old) in enumerate(validation) if old >= floor]
    best = max(allowed, key=lambda i: validation[i][0])
    return alphas[best], test[best][0], test[best][1]


def _choose_larger_alpha_on_ties(alphas, validation, test, max_drop):
    floor = validation[0][1] - max_drop
    allowed = [i for i, (_, old) in enumerate(validation) if old >= floor]
    best = max(allowed, key=lambda i: (validation[i][0], i))
    return alphas[best], test[best][0], test[best][1]


MISTAKES = [
    ("similarity_matrix", _sim_unnormalised),
    ("similarity_matrix", _sim_wrong_orientation),
    ("prompt_ensemble", _ensemble_not_renormalised),
    ("prompt_ensemble", _ensemble_wrong_grouping),
    ("prompt_ensemble", _ensemble_first_template_only),
    ("clip_loss", _loss_one_directional),
    ("clip_loss", _loss_unscaled),
    ("clip_loss", _loss_summed),
    ("logits_gradient", _grad_missing_half),
    ("logits_gradient", _grad_rows_only),
    ("logits_gradient", _grad_same_axis_twice),
    ("lr_at", _lr_no_warmup),
    ("lr_at", _lr_warmup_off_by_one),
    ("same_image_positives", _positives_diagonal_only),
    ("train_loop", _loop_without_clamp),
    ("train_loop", _loop_without_zero_grad),
    ("train_loop", _loop_without_schedule),
    ("train_loop", _loop_schedule_before_step),
    ("train_loop", _loop_plain_targets),
    ("train_loop", _loop_decays_everything),
    ("centroid_gap", _gap_of_first_rows),
    ("centroid_gap", _gap_mean_distance),
    ("close_gap", _close_gap_no_renormalise),
    ("close_gap", _close_gap_wrong_sign),
    ("recall_at_k", _recall_top1_only),
    ("recall_at_k", _recall_lowest_scores),
    ("best_rank", _rank_zero_based),
    ("best_rank", _rank_ties_in_favour),
    ("negclip_loss", _negclip_ignored),
    ("negclip_loss", _negclip_unscaled_negatives),
    ("swap_colors", _swap_keeps_articles),
    ("swap_colors", _swap_shapes_instead),
    ("wise_ft", _wise_ft_reversed),
    ("few_shot", _few_shot_first_indices),
    ("paired_interval", _paired_resampled_separately),
    ("paired_interval", _paired_without_replacement),
    ("paired_interval", _paired_one_standard_error),
    ("choose_and_report", _choose_on_test),
    ("choose_and_report", _choose_reports_validation),
    ("choose_and_report", _choose_ignores_the_constraint),
    ("choose_and_report", _choose_drop_from_the_best),
    ("choose_and_report", _choose_larger_alpha_on_ties),
]


@pytest.mark.parametrize(
    ("name", "mistake"), MISTAKES, ids=[m.__name__ for _, m in MISTAKES]
)
def test_typical_mistakes_fail(name, mistake, capsys):
    assert check(name, mistake) is False
    assert "Hint" in capsys.readouterr().out


@pytest.mark.parametrize("name", NAMES)
def test_answers_of_the_wrong_shape_fail(name):
    assert check(name, lambda *args: torch.zeros(1)) is False


# A one-line call of the library function an exercise rebuilds must not pass:
# the checker runs the answer with it unavailable.
def _one_line_prompt_ensemble(encode_text, classnames, templates):
    import cmalign

    return cmalign.class_embeddings(cmalign.load_clip("toy"), classnames, templates)


def _one_line_clip_loss(image, text, scale):
    from cmalign import losses

    return losses.clip_loss(image, text, scale)


def _one_line_clip_loss_cross_entropy(image, text, scale):
    logits = scale * image @ text.T
    labels = torch.arange(len(logits))
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def _one_line_gradient(logits):
    logits = logits.clone().requires_grad_()
    labels = torch.arange(len(logits))
    loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
    return torch.autograd.grad(loss, logits)[0]


def _one_line_gradient_backward(logits):
    logits = logits.clone().requires_grad_()
    labels = torch.arange(len(logits))
    (
        (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
    ).backward()
    return logits.grad


def _one_line_lr(step, total, warmup, peak):
    from cmalign.optim import warmup_cosine

    return peak * warmup_cosine(total, warmup)(step)


def _one_line_train_loop(model, next_batch, steps, lr, warmup):
    from cmalign.train import Batch, train_loop

    history = train_loop(
        model,
        lambda step: Batch(*next_batch(step)),
        steps=steps,
        lr=lr,
        warmup=warmup,
        progress=False,
    )
    return history["loss"]


def _one_line_gap(image, text):
    from cmalign import geometry

    return geometry.modality_gap(image, text).distance


def _one_line_close_gap(image, text):
    import cmalign.geometry

    return cmalign.geometry.shift_gap(image, text, 1.0)


def _one_line_recall(sim, rel, k):
    from cmalign import metrics

    return float((metrics.ranks(sim, rel) <= k).float().mean())


def _one_line_rank(sim, rel):
    import cmalign.metrics

    return cmalign.metrics.ranks(sim, rel)


def _one_line_paired(a, b):
    from cmalign.stats import paired_difference_ci

    ci = paired_difference_ci(a, b)
    return ci.low, ci.high


def _one_line_negclip(image, text, negatives, scale):
    from cmalign.losses import clip_loss

    return clip_loss(image, text, scale, hard_negatives=negatives)


def _one_line_swap(caption):
    import numpy as np

    from cmalign.toy.captions import describe

    return describe({"objects": [], "relation": None}, np.random.default_rng(0))


def _one_line_wise_ft(original, finetuned, alpha):
    from cmalign.adapt import interpolate_weights

    return interpolate_weights(original, finetuned, alpha)


def _one_line_few_shot(labels, k):
    import cmalign.adapt

    return cmalign.adapt.few_shot_indices(labels, k)


def _one_line_choose(alphas, validation, test, max_drop):
    from cmalign.adapt import choose_alpha

    new, old = zip(*validation)
    alpha = choose_alpha(alphas, new, old, max_drop=max_drop)
    i = alphas.index(alpha)
    return alpha, test[i][0], test[i][1]


ONE_LINERS = [
    ("prompt_ensemble", _one_line_prompt_ensemble),
    ("clip_loss", _one_line_clip_loss),
    ("clip_loss", _one_line_clip_loss_cross_entropy),
    ("logits_gradient", _one_line_gradient),
    ("logits_gradient", _one_line_gradient_backward),
    ("lr_at", _one_line_lr),
    ("train_loop", _one_line_train_loop),
    ("centroid_gap", _one_line_gap),
    ("close_gap", _one_line_close_gap),
    ("recall_at_k", _one_line_recall),
    ("best_rank", _one_line_rank),
    ("paired_interval", _one_line_paired),
    ("negclip_loss", _one_line_negclip),
    ("swap_colors", _one_line_swap),
    ("wise_ft", _one_line_wise_ft),
    ("few_shot", _one_line_few_shot),
    ("choose_and_report", _one_line_choose),
]


@pytest.mark.parametrize(
    ("name", "call"), ONE_LINERS, ids=[name for name, _ in ONE_LINERS]
)
def test_calling_the_compared_library_function_does_not_pass(name, call, capsys):
    assert check(name, call) is False
    out = capsys.readouterr().out
    assert "without calling" in out


def test_a_library_name_in_the_learners_namespace_is_blocked_and_restored(capsys):
    from cmalign import adapt

    namespace = {"interpolate_weights": adapt.interpolate_weights}
    exec(
        "def wise_ft(original, finetuned, alpha):\n"
        "    return interpolate_weights(original, finetuned, alpha)\n",
        namespace,
    )
    assert check("wise_ft", namespace["wise_ft"]) is False
    assert (
        "without calling cmalign.adapt.interpolate_weights" in capsys.readouterr().out
    )
    # everything is put back afterwards
    assert namespace["interpolate_weights"] is adapt.interpolate_weights
    assert adapt.interpolate_weights.__name__ == "interpolate_weights"
