"""``python -m cmalign.evaluate``: runs :func:`cmalign.evaluate.cli.main`."""

import sys

from .cli import main

if __name__ == "__main__":
    main(sys.argv[1:])
