"""`make test`'s two sessions side by side (`tests/support/run_suite.py`): both run, the
other session's output is printed, and a failure in either fails the whole."""

from pathlib import Path

import pytest

from tests.support.run_suite import side_by_side


def _folder(root: Path, name: str, body: str) -> str:
    folder = root / name
    folder.mkdir()
    (folder / f"test_{name}.py").write_text(body)
    return str(folder)


@pytest.mark.parametrize("failing", ["side", "rest", None])
def test_both_sessions_run_and_either_failing_fails_the_whole(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], failing: str | None
) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # not this repository's settings
    passing, failed = "def test_ok():\n    pass\n", "def test_no():\n    assert 1 == 2\n"
    side = _folder(tmp_path, "side", failed if failing == "side" else passing)
    rest = _folder(tmp_path, "rest", failed if failing == "rest" else passing)
    common = ["-p", "no:cacheprovider", "--rootdir", str(tmp_path)]

    code = side_by_side([side, *common], [rest, *common])

    out = capfd.readouterr().out
    assert (code != 0) == (failing is not None)
    assert f"the other session: {side}" in out
    assert "test_side.py" in out.split("the other session:")[1]  # its output, printed after
    assert "test_rest.py" in out.split("the other session:")[0]
    assert "both sessions:" in out
    assert "1 failed" in out if failing else "1 failed" not in out
