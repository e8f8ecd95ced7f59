"""The e2e session's figure of its pods' CPU by container (tests/infra/cluster.py), read
from lines as the executor writes them (devcluster/executor/kubelet.py)."""

from __future__ import annotations

from pathlib import Path

from tests.infra.cluster import container_cpu_seconds

LOG = """\
2026-12-07 07:16:38,902 INFO t-d2/demo-export-dc7a7b06-rtj88 export: pid 29915, 0.04s after binding: ['bpnet-export', '-m', 's3://b/models/bpnet.tlt']
2026-12-07 07:17:08,441 INFO t-d2/demo-export-dc7a7b06-rtj88 export exited 0 after 34.6 CPU seconds
2026-12-07 07:17:09,602 INFO t-d2/demo-build-a100-d361ef45-z7q5r build: pid 30073, 0.05s after binding: ['bpnet-build']
2026-12-07 07:17:31,100 INFO t-d2/demo-build-a100-d361ef45-z7q5r build exited 0 after 20.2 CPU seconds
2026-12-07 07:17:32,000 INFO t-d2/demo-build-t4-14533e11-xsz2z build exited 3 after 9.8 CPU seconds
2026-12-07 07:17:33,000 INFO t-d2/demo-build-cpu-25038803-zttkd build exited 128 after 0.0 CPU seconds (exec: "bpnet-build": executable file not found in $PATH)
"""  # noqa: E501


def test_each_ended_container_counts_under_its_name(tmp_path: Path) -> None:
    log = tmp_path / "pod-executor.log"
    log.write_text(LOG)
    assert container_cpu_seconds(log) == {"export": [34.6], "build": [20.2, 9.8, 0.0]}
