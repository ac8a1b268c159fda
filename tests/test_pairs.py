"""The one dataset contract: both dataset classes fulfil it, len() means captions for both."""

import pytest
import torch

from cmalign.data import load_caption_folder, load_lesson_data
from cmalign.pairs import PairDataset, check_pair_dataset
from cmalign.toy.export import write_caption_folder
from cmalign.toy.world import make_dataset


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    folder = write_caption_folder(tmp_path_factory.mktemp("caps"), n=12, seed=3)
    return [make_dataset(10, seed=0, captions_per_image=3), load_caption_folder(folder.parent)]


def test_both_classes_fulfil_the_contract_and_len_counts_captions(datasets):
    for data in datasets:
        assert isinstance(data, PairDataset)
        assert check_pair_dataset(data) is data
        assert len(data) == len(data.captions) == len(data.text_to_image)
    toy = datasets[0]
    assert len(toy) == 30 and len(toy.images) == 10


def test_relevance_between_is_the_matching_block_of_relevance(datasets):
    g = torch.Generator().manual_seed(0)
    for data in datasets:
        full = data.relevance()
        texts = torch.randint(len(data), (7,), generator=g).tolist()
        images = torch.randint(len(data.images), (5,), generator=g).tolist()
        assert torch.equal(data.relevance_between(texts, images), full[texts][:, images])


def test_a_non_dataset_is_named_with_what_it_lacks():
    with pytest.raises(TypeError, match=r"eval_dataset \(dict\) is not a PairDataset: it lacks images"):
        check_pair_dataset({}, "eval_dataset")


def test_lesson_data_is_a_pair_dataset():
    assert isinstance(load_lesson_data("toy", n=8), PairDataset)
