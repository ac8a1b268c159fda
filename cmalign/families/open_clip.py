"""open_clip checkpoints without open_clip: standard ViT towers mapped into a transformers ``CLIPModel``.

An open_clip checkpoint on the hub (``hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K``,
DataComp, DFN, MetaCLIP …) is ``open_clip_config.json`` (``model_cfg``:
``embed_dim``, ``vision_cfg``, ``text_cfg``, ``quick_gelu``; ``preprocess_cfg``:
mean/std, ``interpolation``, ``resize_mode``) plus ``open_clip_model.safetensors``
or ``open_clip_pytorch_model.bin``. open_clip itself cannot be installed beside
this project's CPU torch (it needs torchvision), so the weights are read here
(safetensors, or ``torch.load(weights_only=True)``) and renamed into
``CLIPModel``'s layout: ``in_proj`` split into q/k/v, ``proj`` and
``text_projection`` transposed, ``ln_pre`` -> ``pre_layrnorm`` — the mapping of
transformers' ``convert_clip_original_pytorch_to_hf.py`` (checked against
open_clip's ``encode_image``/``encode_text`` in tests/test_families_open_clip.py).
Such repos carry no tokenizer: open_clip uses OpenAI's BPE, shipped in
``data/openai_clip``, with OpenAI's cleaning. Towers that are not a standard
ViT (timm backbones, ConvNeXt, ResNets, HF text towers, layer scale, attention
pooling, other tokenizers, sigmoid-trained ``init_logit_bias``) fail with one
line naming what is supported. Scores and probabilities are CLIP's
(:mod:`.clip`). ``save_clip`` writes the converted model as an ordinary HF folder. The module
passes 300 lines because the checks, the renaming (both ways: the offline
stand-in writes open_clip's layout) and the reading are one mapping.
Taught in notebooks/05_retrieval_evaluation.ipynb.
"""

from __future__ import annotations

import json
import tempfile
from functools import lru_cache
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import CLIPConfig, CLIPModel, CLIPProcessor, CLIPTokenizer

from ..checkpoint import RefusedWeightsError, write_openai_tokenizer
from ..utils import quiet_transformers
from . import OPEN_CLIP_CONFIG, Loaded
from .clip import inputs_for, logits, probabilities  # noqa: F401 - CLIP's scores

WEIGHTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
SUPPORTED_TOWERS = (
    "standard ViT towers with OpenAI's BPE text tower (ViT-B-32, ViT-B-16, ViT-L-14, "
    "ViT-H-14, ViT-g-14, ViT-bigG-14 and their -quickgelu forms)"
)
_VISION_FLAGS = (
    "attentional_pool",
    "no_ln_pre",
    "qk_norm",
    "scaled_cosine_attn",
    "scale_heads",
    "scale_attn_inner",
    "scale_attn",
    "scale_fc",
    "act_kwargs",
)
_TEXT_FLAGS = (
    "hf_model_name",
    "hf_tokenizer_name",
    "embed_cls",
    "no_causal_mask",
    "proj_bias",
    "qk_norm",
    "scaled_cosine_attn",
    "scale_heads",
    "scale_attn_inner",
    "scale_attn",
    "scale_fc",
    "act_kwargs",
    "tokenizer_kwargs",
)
OPENAI_VOCAB = 49408


class UnsupportedCheckpointError(OSError):
    """An open_clip checkpoint whose towers do not map onto ``CLIPModel``; ``.feature``."""

    def __init__(self, where: str, feature: str):
        super().__init__(
            f"open_clip checkpoint {where} uses {feature}; cmalign maps only "
            f"{SUPPORTED_TOWERS}"
        )
        self.feature = feature


def read_config(folder: Path) -> dict:
    """``open_clip_config.json`` of ``folder``."""
    path = Path(folder) / OPEN_CLIP_CONFIG
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise OSError(f"cannot read {path}: {err}") from None
    if "model_cfg" not in config:
        raise OSError(f"{path} has no model_cfg (not an open_clip checkpoint config)")
    return config


def unsupported(model_cfg: dict) -> str | None:
    """The first feature of ``model_cfg`` that ``CLIPModel`` cannot hold, or None."""
    vision, text = model_cfg.get("vision_cfg", {}), model_cfg.get("text_cfg", {})
    if "multimodal_cfg" in model_cfg:
        return "a multimodal decoder (CoCa)"
    if model_cfg.get("init_logit_bias") is not None:
        return "a logit bias (sigmoid-trained; load SigLIP checkpoints as SigLIP)"
    if vision.get("timm_model_name"):
        return f"a timm vision tower ({vision['timm_model_name']})"
    if isinstance(vision.get("layers"), (list, tuple)):
        return "a ResNet vision tower (ModifiedResNet)"
    if vision.get("ls_init_value") is not None or text.get("ls_init_value") is not None:
        return "layer scale (ls_init_value)"
    for flag in _VISION_FLAGS:
        if vision.get(flag):
            return f"vision_cfg.{flag}"
    if vision.get("pool_type", "tok") != "tok":
        return f"vision pooling {vision['pool_type']!r} (class token only)"
    if vision.get("pos_embed_type", "learnable") not in ("learnable", "sin_cos_2d"):
        return f"vision pos_embed_type {vision['pos_embed_type']!r}"
    if any(
        isinstance(vision.get(k), (list, tuple)) for k in ("image_size", "patch_size")
    ):
        return "a non-square image or patch size"
    for flag in _TEXT_FLAGS:
        if text.get(flag):
            return f"text_cfg.{flag}"
    if text.get("vocab_size", OPENAI_VOCAB) != OPENAI_VOCAB:
        return f"a {text['vocab_size']}-token vocabulary (not OpenAI's BPE)"
    pool = text.get("pool_type", "argmax")
    if pool not in ("argmax", "eos") or (pool == "eos" and text.get("eos_id") != 49407):
        return f"text pooling {pool!r}"
    if text.get("proj_type", "linear") != "linear":
        return f"text proj_type {text['proj_type']!r}"
    for cfg in (vision, text):
        extra = set(cfg.get("norm_kwargs") or {}) - {"eps"}
        if extra:
            return f"norm_kwargs {sorted(extra)}"
    return None


def clip_config(model_cfg: dict) -> CLIPConfig:
    """The ``CLIPConfig`` of an open_clip ``model_cfg`` (open_clip's defaults filled in)."""
    vision, text = model_cfg.get("vision_cfg", {}), model_cfg.get("text_cfg", {})
    act = "quick_gelu" if model_cfg.get("quick_gelu") else "gelu"
    dim = model_cfg["embed_dim"]
    vw, tw = vision.get("width", 768), text.get("width", 512)

    def eps(cfg: dict) -> float:
        return (cfg.get("norm_kwargs") or {}).get("eps", 1e-5)

    return CLIPConfig(
        projection_dim=dim,
        vision_config={
            "hidden_size": vw,
            "intermediate_size": int(vw * vision.get("mlp_ratio", 4.0)),
            "num_hidden_layers": vision.get("layers", 12),
            "num_attention_heads": vw // vision.get("head_width", 64),
            "image_size": vision.get("image_size", 224),
            "patch_size": vision.get("patch_size", 16),
            "hidden_act": act,
            "layer_norm_eps": eps(vision),
            "projection_dim": dim,
        },
        text_config={
            "hidden_size": tw,
            "intermediate_size": int(tw * text.get("mlp_ratio", 4.0)),
            "num_hidden_layers": text.get("layers", 12),
            "num_attention_heads": text.get("heads", 8),
            "max_position_embeddings": text.get("context_length", 77),
            "vocab_size": OPENAI_VOCAB,
            "hidden_act": act,
            "layer_norm_eps": eps(text),
            "projection_dim": dim,
            # eos id 2 selects transformers' argmax pooling (open_clip's "argmax")
            "eos_token_id": 2 if text.get("pool_type", "argmax") == "argmax" else 49407,
            "bos_token_id": 49406,
            "pad_token_id": 1,
        },
    )


def _pairs(
    text: str, vision_layers: int, text_layers: int
) -> list[tuple[str, str, str]]:
    """(open_clip name, CLIPModel name, how) for every tensor; how is "copy",
    "transpose" or "qkv" (open_clip's fused ``in_proj_`` prefix)."""
    out = [
        ("visual.class_embedding", "vision_model.embeddings.class_embedding", "copy"),
        (
            "visual.conv1.weight",
            "vision_model.embeddings.patch_embedding.weight",
            "copy",
        ),
        (
            "visual.positional_embedding",
            "vision_model.embeddings.position_embedding.weight",
            "copy",
        ),
        ("visual.proj", "visual_projection.weight", "transpose"),
        (
            f"{text}token_embedding.weight",
            "text_model.embeddings.token_embedding.weight",
            "copy",
        ),
        (
            f"{text}positional_embedding",
            "text_model.embeddings.position_embedding.weight",
            "copy",
        ),
        (f"{text}text_projection", "text_projection.weight", "transpose"),
        ("logit_scale", "logit_scale", "copy"),
    ]
    norms = [
        ("visual.ln_pre", "vision_model.pre_layrnorm"),
        ("visual.ln_post", "vision_model.post_layernorm"),
        (f"{text}ln_final", "text_model.final_layer_norm"),
    ]
    towers = (
        ("visual.", "vision_model.", vision_layers),
        (text, "text_model.", text_layers),
    )
    for oc, hf, layers in towers:
        for i in range(layers):
            a, b = f"{oc}transformer.resblocks.{i}.", f"{hf}encoder.layers.{i}."
            norms += [
                (a + x, b + y)
                for x, y in (
                    ("ln_1", "layer_norm1"),
                    ("ln_2", "layer_norm2"),
                    ("attn.out_proj", "self_attn.out_proj"),
                    ("mlp.c_fc", "mlp.fc1"),
                    ("mlp.c_proj", "mlp.fc2"),
                )
            ]
            out.append((a + "attn.in_proj_", b + "self_attn.", "qkv"))
    for x, y in norms:
        out += [
            (f"{x}.weight", f"{y}.weight", "copy"),
            (f"{x}.bias", f"{y}.bias", "copy"),
        ]
    return out


def to_clip_state_dict(state: dict, config: CLIPConfig) -> dict[str, torch.Tensor]:
    """Rename an open_clip state dict into ``CLIPModel``'s (tensors are not copied)."""
    state = {k.removeprefix("module."): v for k, v in state.items()}
    text = "text." if "text.token_embedding.weight" in state else ""  # CustomTextCLIP
    out = {}
    for oc, hf, how in _pairs(
        text,
        config.vision_config.num_hidden_layers,
        config.text_config.num_hidden_layers,
    ):
        if how == "qkv":
            for p in ("weight", "bias"):
                q, k, v = state.pop(oc + p).chunk(3, dim=0)
                out.update(
                    {f"{hf}q_proj.{p}": q, f"{hf}k_proj.{p}": k, f"{hf}v_proj.{p}": v}
                )
        else:
            value = state.pop(oc)
            out[hf] = value.T.contiguous() if how == "transpose" else value
    out["logit_scale"] = out["logit_scale"].reshape(())
    left = sorted(k for k in state if not k.endswith("attn_mask"))
    if left:
        raise KeyError(f"tensors with no place in CLIPModel: {left[:5]}")
    return out


def from_clip_state_dict(state: dict, config: CLIPConfig) -> dict[str, torch.Tensor]:
    """The inverse of :func:`to_clip_state_dict`: a ``CLIPModel`` state dict in
    open_clip's layout (the offline stand-in writes its weights this way)."""
    out = {}
    for oc, hf, how in _pairs(
        "", config.vision_config.num_hidden_layers, config.text_config.num_hidden_layers
    ):
        if how == "qkv":
            for p in ("weight", "bias"):
                out[oc + p] = torch.cat([state[f"{hf}{n}_proj.{p}"] for n in "qkv"])
        else:
            out[oc] = state[hf].T.contiguous() if how == "transpose" else state[hf]
    return {k: v.contiguous() for k, v in out.items()}


def read_weights(folder: Path, *, safetensors_only: bool = False) -> tuple[dict, str]:
    """The state dict of an open_clip folder and the file it came from."""
    folder = Path(folder)
    present = [name for name in WEIGHTS if (folder / name).is_file()]
    if not present:
        raise OSError(
            f"open_clip checkpoint ({folder}) has no weights ({' or '.join(WEIGHTS)})"
        )
    name = present[0]
    if name.endswith(".bin"):
        if safetensors_only:
            raise RefusedWeightsError(
                f"open_clip checkpoint ({folder}) holds its weights only as {name}, a "
                "pickle-based file, and safetensors_only=True refuses it"
            )
        state = torch.load(folder / name, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state)
    else:
        state = load_file(folder / name)
    return state, name


@lru_cache(maxsize=4)
def openai_tokenizer(context_length: int = 77) -> CLIPTokenizer:
    """OpenAI's BPE tokenizer (the one open_clip builds in), from ``data/openai_clip``."""
    with tempfile.TemporaryDirectory() as folder, quiet_transformers():
        tokenizer = CLIPTokenizer.from_pretrained(write_openai_tokenizer(folder))
    tokenizer.model_max_length = context_length
    return tokenizer


def image_processor(preprocess_cfg: dict, image_size: int):
    """A transformers CLIP image processor with open_clip's ``preprocess_cfg`` settings."""
    mode = preprocess_cfg.get("resize_mode", "shortest")
    if mode not in ("shortest", "squash"):
        raise OSError(
            f"open_clip resize_mode {mode!r} is not supported (shortest, squash)"
        )
    squash = mode == "squash"
    with quiet_transformers():  # the PIL fallback notice (no torchvision) hidden
        from transformers import CLIPImageProcessor

        return CLIPImageProcessor(
            size={"height": image_size, "width": image_size}
            if squash
            else {"shortest_edge": image_size},
            crop_size={"height": image_size, "width": image_size},
            do_center_crop=not squash,
            resample=2 if preprocess_cfg.get("interpolation") == "bilinear" else 3,
            image_mean=list(
                preprocess_cfg.get("mean", (0.48145466, 0.4578275, 0.40821073))
            ),
            image_std=list(
                preprocess_cfg.get("std", (0.26862954, 0.26130258, 0.27577711))
            ),
        )


def download(
    repo_id: str, *, cache_dir: str | None = None, safetensors_only: bool = False
) -> Path:
    """Fetch an open_clip repo's config and weights (safetensors first) into the
    hub cache; returns the snapshot folder."""
    from huggingface_hub import hf_hub_download

    config = hf_hub_download(repo_id, OPEN_CLIP_CONFIG, cache_dir=cache_dir)
    names = WEIGHTS[:1] if safetensors_only else WEIGHTS
    for name in names:
        try:
            hf_hub_download(repo_id, name, cache_dir=cache_dir)
            break
        except Exception:  # noqa: BLE001 - this file is absent: try the next
            if name == names[-1]:
                raise
    return Path(config).parent


def _fresh_buffers(model: CLIPModel) -> None:
    # buffers that are not in a state dict stay on "meta" after load_state_dict(assign=True)
    for embeddings in (model.vision_model.embeddings, model.text_model.embeddings):
        n = embeddings.position_embedding.num_embeddings
        embeddings.register_buffer(
            "position_ids", torch.arange(n).expand((1, -1)), persistent=False
        )
    meta = [
        name
        for name, t in (*model.named_parameters(), *model.named_buffers())
        if t.is_meta
    ]
    if meta:
        raise RuntimeError(f"tensors left unset after loading: {meta[:5]}")


def load(
    source: str | Path,
    *,
    weights_file: str | None = None,
    safetensors_only: bool = False,
    cleaning: str | None = None,
    preprocessing: str = "reference",
    **_: object,
) -> Loaded:
    """Load an open_clip checkpoint folder (or hub-cache snapshot) as a ``CLIPModel``."""
    folder = Path(source)
    config = read_config(folder)
    feature = unsupported(config["model_cfg"])
    if feature:
        raise UnsupportedCheckpointError(f"'{folder}'", feature)
    state, weights_file = read_weights(folder, safetensors_only=safetensors_only)
    clip = clip_config(config["model_cfg"])
    try:
        state = to_clip_state_dict(state, clip)
    except KeyError as err:
        raise UnsupportedCheckpointError(
            f"'{folder}'", f"unexpected weights ({err})"
        ) from None
    with torch.device("meta"):
        model = CLIPModel(clip)
    model.load_state_dict(state, strict=True, assign=True)
    _fresh_buffers(model)
    processor = CLIPProcessor(
        image_processor=image_processor(
            config.get("preprocess_cfg", {}), clip.vision_config.image_size
        ),
        tokenizer=openai_tokenizer(clip.text_config.max_position_embeddings),
    )
    inputs = inputs_for(
        model, processor, cleaning=cleaning, preprocessing=preprocessing
    )
    return Loaded(model, processor, inputs, weights_file)
