"""The ``cmalign`` console command: one entry point that hands each sub-command to its module.

    cmalign evaluate retrieval --model toy --dataset toy --root DIR
    cmalign toy-train --out data/toy_clip
    cmalign toy-negclip --out data/toy_clip_negclip
    cmalign standin --cache DIR

Each sub-command is the same program as its ``python -m`` form (listed in
:data:`COMMANDS`), which keeps working; its module is imported only when it
runs, so ``cmalign --help`` stays fast. Installed by ``pip install -e .``
(``[project.scripts]`` in pyproject.toml).
"""

from __future__ import annotations

import importlib
import sys

#: sub-command -> (module whose ``main(argv)`` runs it, one line of help)
COMMANDS: dict[str, tuple[str, str]] = {
    "evaluate": ("cmalign.evaluate.cli", "retrieval / zero-shot benchmarks (python -m cmalign.evaluate)"),
    "toy-train": ("cmalign.toy.train", "train and save the toy CLIP (python -m cmalign.toy.train)"),
    "toy-negclip": ("cmalign.toy.negclip", "fine-tune it with hard negatives (python -m cmalign.toy.negclip)"),
    "standin": ("cmalign.standin", "write an offline stand-in: clip, siglip or open_clip (python -m cmalign.standin)"),
    "scale": ("cmalign.scale.cli", "embed shards on Ray, FAISS indexes (python -m cmalign.scale)"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    rows = "\n".join(f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items())
    return f"usage: cmalign COMMAND [ARGS...]\n\ncommands:\n{rows}\n\n`cmalign COMMAND --help` for a command's options."


def main(argv: list[str] | None = None) -> int:
    """Run ``cmalign COMMAND ARGS``; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"cmalign: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    sys.argv = [f"cmalign {name}", *rest]  # argparse's usage line names the command
    module.main(rest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
