"""``python -m cmalign.scale``: the scale commands (:mod:`cmalign.scale.cli`)."""

from .cli import main

main()
