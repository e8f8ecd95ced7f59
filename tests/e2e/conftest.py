"""The e2e session's operator settings that differ from the product's defaults."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

#: The latency budget of the build Jobs the e2e tests' operators make
#: (`jobs.latencyBudgetSeconds`; the product's default is the exporter's 10 s). With 10 s an
#: ORT int8 build of the sample at 224x320 spent 24.6 of its 25.7 s timing (latency at batch
#: 1 and 4, then int8 against fp32: 48.6 cpu-s on two cores); with 2 s, 9.4 of 10.9 s (20.0
#: cpu-s), and every figure still warms up, settles or says it did not, and makes at least
#: 5 runs. The e2e session's pods are CPU it shares with the other session of `make test`
#: (tests/support/run_suite.py). Operators started as processes take it from this
#: environment (devcluster/operator_process.py passes it on); the chart's installs set the
#: value (E2E_LATENCY_BUDGET_SET).
E2E_LATENCY_BUDGET_SECONDS = "2"
E2E_LATENCY_BUDGET_SET = ("--set", f"jobs.latencyBudgetSeconds={E2E_LATENCY_BUDGET_SECONDS}")


@pytest.fixture(scope="session", autouse=True)
def _build_jobs_time_briefly() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BODYPOSE_LATENCY_BUDGET_SECONDS", E2E_LATENCY_BUDGET_SECONDS)
        yield
