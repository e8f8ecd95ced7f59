"""Exporter stages: each a function from inputs on disk to outputs on disk plus a
manifest entry. The CLI and the Jobs call the same functions."""
