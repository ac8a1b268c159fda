import pytest
import torch

from cmalign import exercises
from cmalign.exercises import solutions

PAIRS = [
    ("check_similarity_matrix", "similarity_matrix"),
    ("check_zero_shot_predict", "zero_shot_predict"),
    ("check_clip_loss", "clip_loss"),
    ("check_logits_gradient", "logits_gradient"),
    ("check_lr_at", "lr_at"),
    ("check_batch_positives", "batch_positives"),
    ("check_centroid_gap", "centroid_gap"),
    ("check_close_gap", "close_gap"),
    ("check_recall_at_k", "recall_at_k"),
    ("check_best_rank", "best_rank"),
]


@pytest.mark.parametrize("checker, solution", PAIRS)
def test_reference_solutions_pass(checker, solution, capsys):
    assert getattr(exercises, checker)(getattr(solutions, solution)) is True
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("checker, _", PAIRS)
def test_unfinished_and_wrong_answers_fail_with_a_hint(checker, _, capsys):
    def unfinished(*args):
        raise NotImplementedError

    assert getattr(exercises, checker)(unfinished) is False
    assert "Hint" in capsys.readouterr().out

    def wrong(*args):
        return torch.zeros(1)

    assert getattr(exercises, checker)(wrong) is False


def test_unnormalised_similarity_is_caught():
    def forgot_to_normalise(image, text):
        return text @ image.T

    assert exercises.check_similarity_matrix(forgot_to_normalise) is False
