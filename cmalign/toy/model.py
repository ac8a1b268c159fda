"""Build the project's small CLIP: real ``transformers`` classes, tiny sizes.

The model is a ``transformers.CLIPModel`` with small vision and text
configs, a ``CLIPImageProcessor`` set to the toy world's image size, and a
``CLIPTokenizer`` whose byte-level BPE vocabulary holds the toy world's words
(any other word still tokenises, letter by letter, so free queries never
fail; they simply mean little to the model). Most words are one token; in the
shipped tokenizer "cyan", "orange" and "triangle" come out in pieces, because
BPE applies an earlier merge (such as "r"+"i" from "right") before theirs.
That is harmless (the model learned the pieces) and left as trained. Saved with
``save_pretrained``, it loads exactly like ``openai/clip-vit-base-patch32``.
Trained by :mod:`cmalign.toy.train`; used in every lesson.
"""

from __future__ import annotations

import math
import tempfile

import torch
from transformers import CLIPConfig, CLIPModel, CLIPProcessor, CLIPTokenizer
from transformers.convert_slow_tokenizer import bytes_to_unicode

from ..checkpoint import write_bpe_files
from ..losses import LOGIT_SCALE_INIT
from ..utils import quiet_transformers

with quiet_transformers():  # without torchvision, naming the class prints a notice
    from transformers import CLIPImageProcessor
from .spec import IMAGE_SIZE, vocabulary

CONTEXT_LENGTH = 32
#: The standard CLIP preprocessing constants (OpenAI's dataset statistics).
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def build_tokenizer(
    words: list[str] | None = None, context_length: int = CONTEXT_LENGTH
) -> CLIPTokenizer:
    """A CLIP BPE tokenizer whose merges spell each of ``words``, mostly as one token.

    Merges are listed word by word; BPE applies them by rank, so a word whose
    letters an earlier word's merges take first is split into pieces (see the
    module docstring).

    The 512 byte-level symbols (with and without the end-of-word mark) come
    first, then one merge per prefix of each word, then ``<|startoftext|>``
    and ``<|endoftext|>`` last, as in OpenAI's vocabulary (so the EOS id is
    never 2, which would switch transformers to legacy pooling).
    """
    symbols = list(bytes_to_unicode().values())
    vocab = {s: i for i, s in enumerate(symbols + [s + "</w>" for s in symbols])}
    merges: list[tuple[str, str]] = []
    for word in words or vocabulary():
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        merged = pieces[0]
        for piece in pieces[1:]:
            if (merged, piece) not in merges:
                merges.append((merged, piece))
            merged += piece
            vocab.setdefault(merged, len(vocab))
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    # Files, read positionally: the one constructor transformers 4 and 5 share.
    with tempfile.TemporaryDirectory() as folder:
        vocab_file, merges_file = write_bpe_files(folder, vocab, merges)
        return CLIPTokenizer(
            str(vocab_file), str(merges_file), model_max_length=context_length
        )


def build_processor(
    image_size: int = IMAGE_SIZE, tokenizer: CLIPTokenizer | None = None
) -> CLIPProcessor:
    """CLIP's own preprocessing (resize shortest side, centre crop, normalise)."""
    with quiet_transformers():  # no "requires torchvision" notice in the lessons
        image_processor = CLIPImageProcessor(
            size={"shortest_edge": image_size},
            crop_size={"height": image_size, "width": image_size},
            image_mean=CLIP_MEAN,
            image_std=CLIP_STD,
        )
    return CLIPProcessor(
        image_processor=image_processor, tokenizer=tokenizer or build_tokenizer()
    )


def sincos_2d(grid: int, dim: int) -> torch.Tensor:
    """Fixed 2-D sine-cosine position table (MAE / MoCo v3), shape (grid * grid, dim)."""
    quarter = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float32) / quarter)
    ys, xs = torch.meshgrid(
        torch.arange(grid, dtype=torch.float32),
        torch.arange(grid, dtype=torch.float32),
        indexing="ij",
    )
    out = [
        f(v.flatten()[:, None] * omega[None])
        for v in (xs, ys)
        for f in (torch.sin, torch.cos)
    ]
    table = torch.cat(out, dim=1)
    return torch.nn.functional.pad(table, (0, dim - table.shape[1]))


def build_toy_clip(
    *,
    seed: int = 0,
    width: int = 128,
    vision_layers: int = 4,
    text_layers: int = 3,
    patch_size: int = 8,
) -> tuple[CLIPModel, CLIPProcessor]:
    """A fresh, untrained small CLIP and its processor for the toy world.

    Parameters
    ----------
    seed : int
        Initialisation seed.
    width : int
        Hidden size of both towers and of the shared space.

    Returns
    -------
    (CLIPModel, CLIPProcessor)
    """
    tokenizer = build_tokenizer()
    config = CLIPConfig(
        text_config=dict(
            vocab_size=len(tokenizer),
            hidden_size=width,
            intermediate_size=4 * width,
            num_hidden_layers=text_layers,
            num_attention_heads=4,
            max_position_embeddings=CONTEXT_LENGTH,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        ),
        vision_config=dict(
            hidden_size=width,
            intermediate_size=4 * width,
            num_hidden_layers=vision_layers,
            num_attention_heads=4,
            image_size=IMAGE_SIZE,
            patch_size=patch_size,
        ),
        projection_dim=width,
        logit_scale_init_value=LOGIT_SCALE_INIT,
    )
    torch.manual_seed(seed)
    model = CLIPModel(config)
    embeddings = model.vision_model.embeddings
    grid = IMAGE_SIZE // patch_size
    with torch.no_grad():  # 2-D sin-cos positions, scaled like the patch embedding
        table = (
            sincos_2d(grid, width)
            * embeddings.patch_embedding.weight.std()
            * math.sqrt(2)
        )
        embeddings.position_embedding.weight[1:] = table
        embeddings.position_embedding.weight[0] = 0
    return model, build_processor(tokenizer=tokenizer)
