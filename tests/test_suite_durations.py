"""The end-of-run summary of where the suite's time went (`tests/infra/durations.py`)."""

from tests.infra.durations import SESSION_END, folder_of, summary_lines


def test_a_tests_phases_are_summed_and_grouped_by_its_folder() -> None:
    per_test = {
        "tests/e2e/test_faults.py::test_kill": 120.0,
        "tests/e2e/test_faults.py::test_restart": 60.0,
        "tests/cli/test_paths.py::test_dir[--onnx]": 0.5,
        "tests/test_layers.py::test_contracts": 2.0,
    }
    cpu = {
        "tests/e2e/test_faults.py::test_kill": 30.0,
        "tests/e2e/test_faults.py::test_restart": 90.0,
        SESSION_END: 700.0,
    }
    lines = summary_lines(per_test, wall=200.0, cpu_per_test=cpu, cpu=240.0, cores=2)
    assert lines[0] == "wall clock 3.3 min, in tests (set-up, call, tear-down) 3.0 min"
    assert lines[1] == (
        "CPU 4.0 min (this process and the children it waited for) of the 6.7 min 2 cores "
        "could give in that wall time: 60% busy"
    )
    assert lines[2] == f"{SESSION_END}: 700.0 cpu-s"  # in no folder
    folders = [line.split()[0] for line in lines[4:7]]
    assert folders == ["tests/e2e", "tests/test_layers.py", "tests/cli"]
    assert lines[4].split()[1:] == ["2", "180.0", "98.6%", "120.0"]
    assert lines[6].split()[1:] == ["1", "0.5", "0.3%", "0.0"]  # no CPU figure: 0
    slowest = lines[lines.index("slowest 25 tests (set-up + call + tear-down; CPU):") + 1 :]
    assert slowest[0] == "   120.0 s     30.0 cpu-s  tests/e2e/test_faults.py::test_kill"
    assert len(slowest) == 4


def test_the_cpu_of_a_waited_for_child_is_counted() -> None:
    """`cpu_seconds` includes a child process's CPU once it is waited for (what a test's
    export or build in a child costs)."""
    import subprocess
    import sys

    from tests.infra.durations import cpu_seconds

    before = cpu_seconds()
    subprocess.run([sys.executable, "-c", "sum(i * i for i in range(3_000_000))"], check=True)
    assert cpu_seconds() - before > 0.05


def test_a_parametrized_id_with_slashes_stays_in_its_folder() -> None:
    assert folder_of("tests/cli/test_paths.py::test_dir[out/ -o]") == "tests/cli"
