import statistics

import pytest
import torch

from cmalign.metrics import (
    TIE_TOLERANCE,
    ranks,
    relevance_from_index,
    retrieval_metrics,
    retrieval_ranks,
    scores_tie,
    zero_shot_accuracy,
)
from tests.conftest import random_unit


def brute_force_ranks(similarity, relevance):
    """Sort each query's items best first, irrelevant before relevant on ties
    (pessimistic), and return the 1-based position of the first relevant one."""
    out = []
    for scores, relevant in zip(similarity.tolist(), relevance.tolist()):
        order = sorted(range(len(scores)), key=lambda j: (-scores[j], relevant[j]))
        out.append(next(pos + 1 for pos, j in enumerate(order) if relevant[j]))
    return out


def brute_force_metrics(image_emb, text_emb, relevance, ks):
    sim = text_emb @ image_emb.T
    result = {}
    for prefix, s, r in (
        ("text_to_image", sim, relevance),
        ("image_to_text", sim.T, relevance.T),
    ):
        ranks = brute_force_ranks(s, r)
        n = len(ranks)
        for k in ks:
            result[f"{prefix}_R@{k}"] = sum(x <= k for x in ranks) / n
        result[f"{prefix}_mean_rank"] = sum(ranks) / n
        result[f"{prefix}_median_rank"] = statistics.median(ranks)
        result[f"{prefix}_mrr"] = sum(1 / x for x in ranks) / n
    return result


@pytest.mark.parametrize("captions_per_image", [1, 5])
@pytest.mark.parametrize("n_images", [3, 40])
def test_metrics_match_brute_force(captions_per_image, n_images, generator):
    image_emb = random_unit(n_images, 8, generator)
    text_to_image = [i for i in range(n_images) for _ in range(captions_per_image)]
    # captions near their image, so ranks are neither all 1 nor random
    noise = torch.randn(len(text_to_image), 8, generator=generator)
    text_emb = torch.nn.functional.normalize(image_emb[text_to_image] + noise, dim=-1)
    ours = retrieval_metrics(image_emb, text_emb, text_to_image, ks=(1, 2, 5))
    relevance = relevance_from_index(text_to_image, n_images)
    ref = brute_force_metrics(image_emb, text_emb, relevance, (1, 2, 5))
    assert ours.keys() == ref.keys()
    for key in ref:
        assert ours[key] == pytest.approx(ref[key], abs=1e-6), key


def test_metrics_with_relevance_matrix_match_brute_force(generator):
    image_emb, text_emb = random_unit(12, 6, generator), random_unit(9, 6, generator)
    relevance = torch.rand(9, 12, generator=generator) < 0.3
    relevance[:, 0] |= ~relevance.any(1)  # every text fits an image
    relevance[0] |= ~relevance.any(0)  # every image has a caption
    ours = retrieval_metrics(image_emb, text_emb, relevance=relevance, ks=(1, 3))
    ref = brute_force_metrics(image_emb, text_emb, relevance, (1, 3))
    for key in ref:
        assert ours[key] == pytest.approx(ref[key], abs=1e-6), key


def test_hand_worked_with_ties():
    # 2 images, 3 texts; texts 0 and 1 describe image 0, text 2 describes image 1.
    image_emb = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    s = 2**-0.5
    text_emb = torch.tensor([[1.0, 0.0], [s, s], [1.0, 0.0]])
    m = retrieval_metrics(image_emb, text_emb, [0, 0, 1], ks=(1, 2))
    # text->image: text 0 rank 1; text 1 ties image 0 and 1 -> pessimistic rank 2;
    # text 2 prefers image 0 (1.0 vs 0.0) -> rank 2.
    assert m["text_to_image_R@1"] == pytest.approx(1 / 3)
    assert m["text_to_image_mean_rank"] == pytest.approx(5 / 3)
    assert m["text_to_image_mrr"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    # image->text: image 0's captions are texts 0, 1; text 0 (1.0) ties text 2
    # (1.0, not its caption) -> rank 2. Image 1's caption text 2 scores 0.0,
    # below text 1 (0.707) and tied with text 0 (0.0) -> rank 3.
    assert m["image_to_text_R@1"] == 0.0
    assert m["image_to_text_R@2"] == 0.5
    assert m["image_to_text_mean_rank"] == 2.5
    assert m["image_to_text_median_rank"] == 2.5


def test_collapsed_model_gets_worst_rank_not_best():
    emb = torch.nn.functional.normalize(torch.ones(4, 3), dim=-1)
    m = retrieval_metrics(emb, emb, [0, 1, 2, 3], ks=(1,))
    assert m["text_to_image_R@1"] == 0.0
    assert m["text_to_image_mean_rank"] == 4.0


def test_metric_errors(generator):
    image, text = random_unit(3, 4, generator), random_unit(3, 4, generator)
    with pytest.raises(ValueError, match="exactly one"):
        retrieval_metrics(image, text)
    with pytest.raises(ValueError, match="2 entries for 3 texts"):
        retrieval_metrics(image, text, [0, 1])
    with pytest.raises(ValueError, match=r"image indices in \[0, 3\)"):
        retrieval_metrics(image, text, [0, 1, 5])
    with pytest.raises(ValueError, match="image->text.*query 2 has no relevant"):
        retrieval_metrics(image, text, [0, 1, 1])
    with pytest.raises(ValueError, match="not L2-normalised"):
        retrieval_metrics(image * 3, text, [0, 1, 2])


def test_zero_shot_accuracy(generator):
    classes = torch.eye(3)
    images = torch.nn.functional.normalize(
        torch.tensor(
            [[1.0, 0.1, 0.0], [0.0, 1.0, 0.2], [0.9, 0.0, 1.0], [0.0, 0.0, 1.0]]
        ),
        dim=-1,
    )
    assert (
        zero_shot_accuracy(images, classes, [0, 1, 0, 2]) == 0.75
    )  # image 2 is nearer class 2
    with pytest.raises(ValueError, match="3 labels for 4 images"):
        zero_shot_accuracy(images, classes, [0, 1, 2])
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        zero_shot_accuracy(images, classes, [0, 1, 2, 3])


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 4096])
@pytest.mark.parametrize("use_relevance", [False, True])
def test_chunked_ranks_equal_the_whole_matrix(chunk_size, use_relevance, generator):
    image_emb, text_emb = random_unit(9, 5, generator), random_unit(20, 5, generator)
    text_to_image = [t % 9 for t in range(20)]
    text_emb[11] = text_emb[10]  # a verbatim duplicate caption (of image 2) ...
    image_emb[1] = text_emb[10]  # ... that ties with image 1's best caption
    relevance = relevance_from_index(text_to_image, 9)
    kwargs = (
        {"relevance": relevance} if use_relevance else {"text_to_image": text_to_image}
    )
    got = retrieval_ranks(image_emb, text_emb, chunk_size=chunk_size, **kwargs)
    sim = text_emb @ image_emb.T
    assert got["text_to_image"].tolist() == list(brute_force_ranks(sim, relevance))
    assert got["image_to_text"].tolist() == list(brute_force_ranks(sim.T, relevance.T))
    # image 1 owns text 10, image 2 owns text 11: identical captions tie. One
    # GEMM may round identical rows differently in its edge tiles; the tie
    # tolerance makes the flag the same in either orientation of the product.
    for sim_i in (image_emb @ text_emb.T, (text_emb @ image_emb.T).T):
        best = (sim_i.masked_fill(~relevance.T, -2).max(1).values)[:, None]
        near = (sim_i - best).abs() <= TIE_TOLERANCE
        tied = (near & ~relevance.T).any(1)
        assert torch.equal(got["image_to_text_tied"], tied)
    assert tied[1] and tied.sum() >= 1
    assert retrieval_metrics(
        image_emb, text_emb, chunk_size=chunk_size, **kwargs
    ) == retrieval_metrics(image_emb, text_emb, chunk_size=4096, **kwargs)


# ---- ties up to float rounding (cmalign.metrics.TIE_TOLERANCE) ----


def test_scores_one_rounding_step_apart_tie_and_real_gaps_do_not():
    sim = torch.tensor([[0.5, 0.5, 0.3], [0.5, 0.5, 0.3], [0.5, 0.5, 0.3]])
    sim[1, 1] = torch.nextafter(sim[1, 1], torch.tensor(1.0))  # one float32 step up
    sim[2, 1] = 0.5 + 1e-4  # a real (small) difference
    relevance = torch.tensor([[True, False, False]] * 3)
    # the exact rule used to call row 1 "beaten" and say nothing about a tie
    assert ranks(sim, relevance, tie_tolerance=0).tolist() == [2, 2, 2]
    assert ranks(sim, relevance).tolist() == [2, 2, 2]
    got = retrieval_ranks(
        torch.eye(3), torch.eye(3), relevance=torch.eye(3, dtype=torch.bool)
    )
    assert not got["text_to_image_tied"].any()
    assert scores_tie(sim[1, 0], sim[1, 1]) and not scores_tie(sim[2, 0], sim[2, 1])
    assert not scores_tie(sim[1, 0], sim[1, 1], tie_tolerance=0)


def test_a_score_just_below_the_best_relevant_ties_it_pessimistically():
    best = torch.tensor(0.5)
    below = torch.nextafter(best, torch.tensor(0.0))
    sim = torch.stack([best, below, torch.tensor(0.1)])[None]
    relevance = torch.tensor([[True, False, False]])
    assert ranks(sim, relevance).tolist() == [2]  # counted against the query
    assert ranks(sim, relevance, tie_tolerance=0).tolist() == [1]  # exact: a win


@pytest.mark.parametrize("scale", [1.0, 100.0])
def test_ties_do_not_depend_on_the_logit_scale(scale, generator):
    sim = torch.randn(6, 9, generator=generator).clamp(-1, 1)
    sim[:, 4] = torch.nextafter(sim[:, 2], torch.tensor(2.0))  # near-copies
    relevance = torch.zeros(6, 9, dtype=torch.bool)
    relevance[:, 2] = True
    scaled = (sim * scale).float()
    assert torch.equal(ranks(scaled, relevance), ranks(sim, relevance))
    assert (ranks(sim, relevance) >= 2).all()  # column 4 ties column 2 everywhere


def test_the_same_caption_in_differently_padded_batches_ties(toy_bundle):
    """A verbatim duplicate caption, embedded alone and inside a batch padded to a
    longer caption, must tie with itself, whatever the kernels round."""
    from cmalign.embed import embed_texts

    caption = "a red circle"
    alone = embed_texts(toy_bundle, [caption], progress=False)
    padded = embed_texts(
        toy_bundle,
        [caption, "a photo of a large blue square to the left of a small red star"],
        progress=False,
    )[:1]
    assert (alone - padded).abs().max() <= 1e-6  # a few rounding steps at most
    image = torch.nn.functional.normalize(alone + 0.3 * alone.roll(1, dims=1), dim=-1)
    other = torch.nn.functional.normalize(alone.roll(7, dims=1), dim=-1)
    images = torch.cat([image, other])
    # caption 0 (alone) is image 0's; caption 1, the same words, is image 1's
    text_emb = torch.cat([alone, padded])
    relevance = torch.tensor([[True, False], [False, True]])
    got = retrieval_ranks(images, text_emb, relevance=relevance)
    assert got["image_to_text_tied"][0]
    assert got["image_to_text"][0] == 2  # pessimistic, whichever copy rounded up
