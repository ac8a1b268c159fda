"""open_clip's own answers, computed in a process of their own (run as a script).

open_clip cannot be installed beside this project's CPU torch (it needs
torchvision, whose wheels do not import with torch 2.13): the tests install
``open_clip_torch`` with ``pip install --no-deps --target DIR`` and run this
script with ``DIR`` first on ``sys.path`` and stub modules standing in for
torchvision, which open_clip's model code needs only for its transforms and
``FrozenBatchNorm2d`` (see shared/STYLE.md). Never imported by the package.

    python tests/open_clip_reference.py SITE_DIR IN.pt OUT.pt

``IN.pt`` holds ``texts`` (list of str) and, optionally, ``folders`` (open_clip
checkpoint folders) and ``pixels`` (n, 3, H, W). ``OUT.pt`` gets ``ids``
(``open_clip.tokenize``) and, per folder, a dict with ``image`` / ``text``
(``encode_image`` / ``encode_text``, not normalised) and ``logit_scale``.
"""

from __future__ import annotations

import importlib.machinery
import sys
import types


class _Anything(type):
    """A class whose every attribute is itself: enough for module-level uses."""

    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return cls


class _StubModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Anything(name, (), {"__init__": lambda self, *a, **k: None})


def stub_torchvision() -> None:
    names = (
        "torchvision",
        "torchvision.transforms",
        "torchvision.transforms.functional",
        "torchvision.ops",
        "torchvision.ops.misc",
    )
    for name in names:
        module = _StubModule(name)
        module.__spec__ = importlib.machinery.ModuleSpec(name, None)
        module.__path__ = []
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(sys.modules[parent], child, module)


def main(site: str, source: str, target: str) -> None:
    stub_torchvision()
    sys.path.insert(0, site)
    import open_clip
    import torch

    job = torch.load(source, weights_only=False)
    ids = open_clip.tokenize(job["texts"])
    out = {"ids": ids, "version": open_clip.__version__, "models": []}
    for folder in job.get("folders", []):
        model = open_clip.create_model(f"local-dir:{folder}").eval()
        with torch.no_grad():
            image, text = model.encode_image(job["pixels"]), model.encode_text(ids)
        scale = model.logit_scale.detach()
        out["models"].append({"image": image, "text": text, "logit_scale": scale})
    torch.save(out, target)


if __name__ == "__main__":
    main(*sys.argv[1:4])
