"""Where a benchmark writes its models and artifacts: the directory it was given
(kept, to look at afterwards) or a temporary one (removed when it ends, even on a
failure: an export at three resolutions leaves hundreds of MB)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def work_dir(given: Path | None, prefix: str) -> Iterator[Path]:
    if given is not None:
        yield given
        return
    work = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)
