"""``python -m scrapl``: the same commands as the ``scrapl`` console script."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
