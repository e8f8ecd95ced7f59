"""The subcommands of `bpnet`, by name, each a module with the same four members.

Followed: Polygraphy's tool registry (NVIDIA/TensorRT
`tools/Polygraphy/polygraphy/tools/registry.py`: one list of tools, each
registered by module name and set up on the one dispatcher in
`polygraphy/tools/_main.py`). A command module defines:

- `HELP`: one line for `bpnet --help`;
- `configure(parser)`: its flags (from the shared groups in `cli.args`), its
  description and examples;
- `run(args) -> int`: the work, calling one stage; `UserError` is handled by
  the dispatcher (`cli.main`), not here;
- `STAGE`: the stage name for the Job's termination message (`result.py`),
  or None for commands no Job runs.

Command modules are cheap to import (no TensorFlow, no TensorRT): each imports
the stage it runs when it runs, so `bpnet --help` and `bpnet inspect` start at
once.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: Subcommand -> module, in the order `bpnet --help` lists them.
COMMANDS = {
    "export": "bodypose_exporter.cli.export",
    "build": "bodypose_exporter.cli.build",
    "calibrate": "bodypose_exporter.cli.calibrate",
    "sample": "bodypose_exporter.cli.sample",
    "evaluate": "bodypose_exporter.cli.evaluate",
    "inspect": "bodypose_exporter.cli.inspect",
}


def command(name: str) -> ModuleType:
    return importlib.import_module(COMMANDS[name])
