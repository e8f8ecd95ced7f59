"""The end-of-run summary of where the suite's time went (`tests/infra/durations.py`)."""

from tests.infra.durations import folder_of, summary_lines


def test_a_tests_phases_are_summed_and_grouped_by_its_folder() -> None:
    per_test = {
        "tests/e2e/test_faults.py::test_kill": 120.0,
        "tests/e2e/test_faults.py::test_restart": 60.0,
        "tests/cli/test_paths.py::test_dir[--onnx]": 0.5,
        "tests/test_layers.py::test_contracts": 2.0,
    }
    lines = summary_lines(per_test, wall=200.0)
    assert lines[0] == "wall clock 3.3 min, in tests (set-up, call, tear-down) 3.0 min"
    folders = [line.split()[0] for line in lines[2:5]]
    assert folders == ["tests/e2e", "tests/test_layers.py", "tests/cli"]
    assert lines[2].split()[1:] == ["2", "180.0", "98.6%"]
    slowest = lines[lines.index("slowest 25 tests (set-up + call + tear-down):") + 1 :]
    assert slowest[0] == "   120.0 s  tests/e2e/test_faults.py::test_kill"
    assert len(slowest) == 4


def test_a_parametrized_id_with_slashes_stays_in_its_folder() -> None:
    assert folder_of("tests/cli/test_paths.py::test_dir[out/ -o]") == "tests/cli"
