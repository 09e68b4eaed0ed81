"""``python -m bench [--short | --tiny] [--no-record] [--profile LABEL]``."""

from __future__ import annotations

import sys

from bench.suite import main

if __name__ == "__main__":
    sys.exit(main())
