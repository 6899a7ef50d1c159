"""``python -m keypoint_corrupt``: the ``keypoint-corrupt`` command without its console script."""

import sys

from keypoint_corrupt.cli.main import main

if __name__ == "__main__":  # importing the module (doctest collection) must not run the CLI
    sys.exit(main())
