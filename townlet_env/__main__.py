"""``python -m townlet_env``: the ``townlet`` command line."""

import sys

from townlet_env.cli import main

if __name__ == "__main__":
    sys.exit(main())
