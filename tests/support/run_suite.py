"""`make test`'s pytest: the e2e tests in one session, every other test in another, side
by side (issue 32, item 5: the suite under 30 minutes).

Why two sessions: the fresh-clone run at a9af661 took 52.6 min with the two cores 62%
busy ("where the time went", tests/infra/durations.py). The e2e tests mostly wait - on
Jobs, on kopf's backoffs, on a minute of S3 outage - while their pods work (tests/e2e:
1542 s of wall time, 474 cpu-s in the session, most of the 1533 cpu-s reaped at its end),
and the other folders are CPU-bound in the session itself (tests/engines: 505 s, 725
cpu-s). Side by side, one's waits overlap the other's work.

Why not pytest-xdist: its workers are sessions of their own anyway (each would start its
own cluster and export), its scheduler would have to be told which tests share the
e2e cluster (`--dist loadgroup` and a mark on each), and what this suite prints at the
end - the measured figures (tests/conftest.py `FIGURES`) and where the time went - lives
in the session that ran the test, not in xdist's controller. Two plain sessions keep all
of it as it is.

Memory: a TensorFlow export takes about 4 GB and six at once exceed the 24 GB of these
machines; the e2e session runs at most two at once (tests/e2e/test_bad_inputs.py,
`heavy`), the other session one at a time.

With arguments (`make unit PYTEST_ARGS=...`) it is one session, exactly as asked.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: The folder run in a session of its own, beside the rest.
SIDE = "tests/e2e"


def _pytest(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", *args]


def side_by_side(side: list[str], rest: list[str]) -> int:
    """pytest `side` in a session whose output is kept and printed at the end, beside
    pytest `rest` in this terminal; nonzero if either failed."""
    started = time.monotonic()
    log = Path(tempfile.mkstemp(prefix="bodypose-side-", suffix=".log")[1])
    with log.open("w") as out:
        other = subprocess.Popen(_pytest(*side), stdout=out, stderr=subprocess.STDOUT)
        print(f"{' '.join(side)}: a session of its own beside this one; its output: {log}")
        sys.stdout.flush()
        try:
            rest_exit = subprocess.call(_pytest(*rest))
            if other.poll() is None:
                print(f"\nwaiting for the other session (its output so far: {log})", flush=True)
            side_exit = other.wait()
        finally:
            if other.poll() is None:  # interrupted: stop the other session too
                other.terminate()
                other.wait()
    print(f"\n{'=' * 25} the other session: {' '.join(side)} {'=' * 25}")
    print(log.read_text(), end="")
    log.unlink()
    print(
        f"\nboth sessions: {(time.monotonic() - started) / 60:.1f} min of wall clock; "
        f"exit {rest_exit} (this one), {side_exit} (the other)"
    )
    return rest_exit or side_exit


def main(argv: list[str]) -> int:
    if argv:
        return subprocess.call(_pytest(*argv))
    # Each session keeps its own cache (`--lf` after a failure), not one overwriting the other's.
    return side_by_side([SIDE, "-o", "cache_dir=.pytest_cache/e2e"], ["--ignore", SIDE])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
