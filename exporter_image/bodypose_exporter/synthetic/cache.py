"""The trained sample, made once per content and kept: tests and CI pay the training once.

The key is a sha256 over the source of every module that decides the
weights (drawing, labels, network, training), the training spec, and the
tf_keras version (a model saved by one Keras may not load in another). The
weights live as Keras HDF5 in
`${XDG_CACHE_HOME:-~/.cache}/bodypose-export/samples/<key>/model.h5`, with
`training.json` (spec, seconds, loss curve) beside it. Concurrent callers
(parallel test sessions, a benchmark) wait on one lock file per key, and a
finished directory appears by one rename, so a reader never sees half a
model.

The weights of the default spec are also committed beside this module
(`trained/`, about a megabyte, written by this training code: `make
sample-weights` remakes them), so a fresh machine, CI or `make demo` never
waits for a training that takes three minutes on an idle 2-core machine and
much longer on a busy one: a cache miss whose key matches the committed
weights copies them in; any other key trains. `tests/evaluation/test_synthetic.py`
fails when the training code changes and the committed weights were not
remade.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bodypose_exporter.model import bpnet
from bodypose_exporter.synthetic import labels, people, small_bpnet
from bodypose_exporter.synthetic import train as training

log = logging.getLogger(__name__)

MODEL_NAME = "model.h5"
INFO_NAME = "training.json"
#: The default spec's weights, committed (see the module docstring).
COMMITTED = Path(__file__).resolve().parent / "trained"


@dataclass(frozen=True)
class CachedModel:
    h5: Path
    info: dict[str, Any]  # spec, seconds, losses, key
    trained_now: bool  # False when it came from the cache


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "bodypose-export" / "samples"


def content_key(spec: training.TrainSpec) -> str:
    from bodypose_exporter.model.keras_backend import keras

    digest = hashlib.sha256()
    for module in (people, labels, small_bpnet, bpnet, training):
        digest.update(Path(str(module.__file__)).read_bytes())
    digest.update(json.dumps(dataclasses.asdict(spec), sort_keys=True).encode())
    digest.update(str(keras.__version__).encode())
    return digest.hexdigest()[:20]


def committed_key(committed: Path = COMMITTED) -> str | None:
    """The content key the committed weights were trained under, if they are there."""
    info = committed / INFO_NAME
    if not (committed / MODEL_NAME).exists() or not info.exists():
        return None
    return str(json.loads(info.read_text()).get("key"))


def trained_model(
    spec: training.TrainSpec | None = None,
    root: Path | None = None,
    *,
    committed: Path | None = COMMITTED,
    train: bool = False,
) -> CachedModel:
    """The trained sample's HDF5: from the cache, else the committed weights when their key
    matches, else trained now; cached either way. `train`: train even so (to remake them)."""
    spec = spec or training.TrainSpec()
    root = root or cache_root()
    key = content_key(spec)
    final = root / key
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second caller waits for the first one's model
        if (final / MODEL_NAME).exists() and not train:
            info = json.loads((final / INFO_NAME).read_text())
            log.info("trained sample model from the cache: %s", final)
            return CachedModel(final / MODEL_NAME, info, trained_now=False)
        if committed is not None and not train and committed_key(committed) == key:
            staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
            for name in (MODEL_NAME, INFO_NAME):
                shutil.copyfile(committed / name, staging / name)
            staging.rename(final)
            log.info("trained sample model: the committed weights (%s), cached in %s",
                     committed, final)  # fmt: skip
            info = json.loads((final / INFO_NAME).read_text())
            return CachedModel(final / MODEL_NAME, info, trained_now=False)
        log.info("training the sample model (%d steps; cached afterwards in %s)", spec.steps, final)
        result = training.train(spec)
        if final.exists():  # train=True over a cached copy: the new one replaces it
            shutil.rmtree(final)
        staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
        try:
            with warnings.catch_warnings():
                # HDF5 is "legacy" to Keras, and exactly the format a TAO .tlt holds.
                warnings.filterwarnings("ignore", message=".*HDF5 file via `model.save\\(\\)`")
                result.model.save(
                    str(staging / MODEL_NAME), save_format="h5", include_optimizer=False
                )
            info = {
                "key": key,
                "spec": dataclasses.asdict(spec),
                "seconds": round(result.seconds, 1),
                "lossPerImage": [round(v, 2) for v in result.losses],
            }
            (staging / INFO_NAME).write_text(json.dumps(info, indent=2) + "\n")
            staging.rename(final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return CachedModel(final / MODEL_NAME, info, trained_now=True)


def main(argv: list[str] | None = None) -> int:
    """`make sample-weights`: train the default spec anew and commit its weights."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m bodypose_exporter.synthetic.cache",
        description="Train the trained sample's default spec anew (a few minutes on two "
        f"cores) and write its weights to {COMMITTED} (commit them with the code that made "
        "them). Needed when the drawing, labelling, network or training code changes.",
    )
    parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    made = trained_model(train=True, committed=None)
    COMMITTED.mkdir(exist_ok=True)
    for name in (MODEL_NAME, INFO_NAME):
        shutil.copyfile(made.h5.parent / name, COMMITTED / name)
    print(f"wrote {COMMITTED} (key {made.info['key']}, trained in {made.info['seconds']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
