"""`python -m bodypose_exporter.evaluation`: kept as an alias of `bpnet evaluate`, same flags.

The command itself is `cli/evaluate.py`; this is its old entry point (the
one import from below the CLI layer that the layer contract allows, named in
.importlinter).
"""

from __future__ import annotations

import sys

from bodypose_exporter.cli.main import evaluate_main as main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
