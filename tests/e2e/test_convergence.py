"""A short convergence campaign (tests/support/convergence.py) on the real local cluster.

One BodyPoseExport driven through a dozen seeded steps: a target added, removed,
renamed, moved to another pool, its backend changed, a scheduling field changed,
a target made impossible (a nodeSelector no node matches) and fixed by the next
edit, the input resolution changed; the operator SIGKILLed, a Job deleted and
MinIO stopped while builds run. After each step, quiescence and the invariant
(observedGeneration, the targets listed, every Ready target's artifact under
its identity now, no obsolete Job running, kstatus Current or Failed for the
spec as it is, no secret in events, status or the operator's log). The test
asserts no divergence; `make soak` runs the long campaign.

MinIO is the test's own (the outage stops it); the cluster is the session's,
whose API server is not restarted here (the soak does that on a cluster of its own).
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from devcluster.controlplane import LocalCluster
from devcluster.images import BuiltImage
from devcluster.minio import MinioProcess
from tests.support.convergence import REQUIRED_EDITS, REQUIRED_FAULTS, Campaign, sample_model

#: The fixed seed: its twelve steps try every required edit and fault, with one
#: re-export (a resolution change), the rest builds and reuse.
SEED, STEPS = 8, 12


@pytest.mark.timeout(1800)
def test_a_short_convergence_campaign_reaches_every_declared_state(
    cluster: LocalCluster,
    namespace: str,
    own_minio: MinioProcess,
    kstatus: Path,
    images: list[BuiltImage],
    tmp_path: Path,
) -> None:
    from tests.conftest import FIGURES

    key = f"campaign-key-{secrets.token_hex(8)}"
    model, _ = sample_model(tmp_path / "sample", key, images=0)
    exporter = next(i.ref for i in images if i.name == "exporter")
    campaign = Campaign(cluster, namespace, own_minio, model, key, kstatus, exporter, tmp_path)
    campaign.prepare()
    campaign.start_operator()
    try:
        result = campaign.run(STEPS, SEED)
    finally:
        campaign.stop_operators()
    FIGURES.append(f"short {result.summary()} in {result.wall_seconds:.0f}s")
    print("\n".join(str(d) for d in result.divergences))
    print(result.fault_summary())
    print(result.summary())
    edits = {s.edit for s in result.steps}
    faults = {s.fault for s in result.steps}
    assert set(REQUIRED_EDITS) | {"fix"} <= edits and set(REQUIRED_FAULTS) <= faults, result.steps
    assert not result.divergences, "\n".join(map(str, result.divergences))


def test_a_divergence_prints_why_each_failed_pod_ended() -> None:
    """The campaign's evidence lines: a failed pod's exit code and termination message,
    nothing for a pod that succeeded or still runs (objects shaped as the client returns)."""
    from types import SimpleNamespace as NS

    def pod(name: str, terminated: NS | None) -> NS:
        state = NS(terminated=terminated)
        return NS(metadata=NS(name=name), status=NS(container_statuses=[NS(state=state)]))

    failed = NS(exit_code=2, reason="Error", message='{"reason": "OutputNotWritable",\n"x": 1}')
    pods = {
        "job-name=export-a": [pod("export-a-1", failed), pod("export-a-2", None)],
        "job-name=build-b": [pod("build-b-1", NS(exit_code=0, reason="Completed", message=""))],
    }
    fake = NS(
        namespace="ns",
        jobs=lambda: [NS(metadata=NS(name="export-a")), NS(metadata=NS(name="build-b"))],
        core=NS(list_namespaced_pod=lambda ns, label_selector: NS(items=pods[label_selector])),
    )
    assert Campaign.failed_pods(fake) == [  # type: ignore[arg-type]
        'pod export-a-1 of Job export-a exited 2 (Error): {"reason": "OutputNotWritable", "x": 1}'
    ]
