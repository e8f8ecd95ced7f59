"""The exporter's command line: `bpnet` and its subcommands, and the TAO-compatible aliases.

- `main`: the dispatcher (`bpnet`), the aliases (`bpnet-export`, `bpnet-build`,
  `bpnet-sample`, `python -m bodypose_exporter.evaluation`), logging and
  `UserError` handling;
- `registry`: subcommand name -> module;
- `args`: the argument groups, defined once, shared by the commands;
- `export`, `build`, `calibrate`, `sample`, `evaluate`, `inspect`: one module
  per subcommand, each calling one stage (`bodypose_exporter.stages`).
"""
