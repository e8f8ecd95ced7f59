"""benchmarks/operator_scale.py's count of the operator's API requests in the burst, and
how it sees the burst end.

The benchmark itself starts a control plane of its own (`make bench-operator`); this
checks the line it prints from an audit log, on a log written here: the operator's
requests by kind, watches and other users' requests left out, and per resource.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
USER = "system:serviceaccount:kube-system:bench-operator"


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "operator_scale", ROOT / "benchmarks" / "operator_scale.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _event(verb: str, resource: str, at: float, sub: str = "", user: str = USER) -> str:
    stamp = dt.datetime.fromtimestamp(at, dt.UTC).isoformat().replace("+00:00", "Z")
    ref = {"resource": resource, **({"subresource": sub} if sub else {})}
    return json.dumps({"user": {"username": user}, "verb": verb, "objectRef": ref,
                       "stageTimestamp": stamp})  # fmt: skip


def test_the_burst_requests_by_kind_and_per_resource(tmp_path: Path) -> None:
    bench = _module()
    log = tmp_path / "audit.log"
    log.write_text("\n".join([
        _event("create", "jobs", 10.0),
        _event("create", "jobs", 10.5),
        _event("patch", "bodyposeexports", 11.0, "status"),
        _event("patch", "bodyposeexports", 11.5),
        _event("list", "jobs", 12.0),
        _event("watch", "jobs", 12.0),  # a watch ends when it times out: left out
        _event("list", "jobs", 12.0, user="system:kube-controller-manager"),  # not ours
        _event("get", "bodyposeexports", 30.0),  # after the burst
    ]) + "\n")  # fmt: skip
    calls = bench._calls(log, USER, 9.0, 20.0)
    assert calls == {
        "create jobs": 2, "patch bodyposeexports/status": 1, "patch bodyposeexports": 1,
        "list jobs": 1,
    }  # fmt: skip
    figures = bench.Figures(2, 1.0, 100.0, 0.5, 0.0, 0.0, 2, None, calls)
    assert figures.calls_line() == (
        "calls/resource=2.50 status-patches/resource=0.50 (create jobs=1.00 list jobs=0.50 "
        "patch bodyposeexports=0.50 patch bodyposeexports/status=0.50)"
    )


def test_the_burst_line_gives_the_machines_cpu_and_the_operators_share() -> None:
    bench = _module()
    figures = bench.Figures(100, 10.0, 100.0, 2.5, 0.0, 0.0, 100, machine_cpu=10.0)
    line = figures.line()
    busy = 100 * 10.0 / (10.0 * bench.CORES)  # 10 cpu-s in 10 s of wall clock
    assert f"machine-cpu=10.0s (operator 25%, cores busy {busy:.0f}%)" in line


def test_the_idle_windows_requests_are_named_watches_included(tmp_path: Path) -> None:
    bench = _module()
    log = tmp_path / "audit.log"
    log.write_text("\n".join([
        _event("watch", "jobs", 40.0),  # kopf's watch ended at its server timeout
        _event("watch", "bodyposeexports", 41.0),
        _event("list", "jobs", 42.0),
        _event("watch", "jobs", 90.0),  # after the window
    ]) + "\n")  # fmt: skip
    idle = bench._calls(log, USER, 30.0, 60.0, watches=True)
    assert idle == {"watch jobs": 1, "watch bodyposeexports": 1, "list jobs": 1}
    figures = bench.Figures(10, 1.0, 100.0, 0.5, 0.0, 0.05, 10, idle_calls=idle)
    assert figures.line().endswith(
        "idle-requests=0.05/s (list jobs=1 watch bodyposeexports=1 watch jobs=1)"
    )
    assert "idle-requests=0.00/s" in bench.Figures(10, 1.0, 100.0, 0.5, 0.0, 0.0, 10).line()
    assert bench.Figures(10, 1.0, 100.0, 0.5, 0.0, 0.0, 10).line().endswith("/s")


def test_the_bursts_cpu_is_split_by_process_with_the_floor_it_sets() -> None:
    bench = _module()
    before = {10: ("kube-apiserver", 100.0), 11: ("etcd", 50.0), 12: ("python3", 5.0),
              13: ("bash", 1.0), 14: ("kwok", 2.0)}  # fmt: skip
    after = {10: ("kube-apiserver", 130.0), 11: ("etcd", 58.0), 12: ("python3", 17.0),
             13: ("bash", 1.0),  # idle: left out
             14: ("etcd", 0.5),  # pid 14 reused by another process: all of its CPU counts
             15: ("kube-scheduler", 3.0)}  # started during the burst: all of it  # fmt: skip
    spent = bench.cpu_by_process(before, after, {12: "operator"}, ended_children=4.0)
    assert spent == {"kube-apiserver": 30.0, "etcd": 8.5, "operator": 12.0,
                     "kube-scheduler": 3.0, "kubectl": 4.0}  # fmt: skip
    figures = bench.Figures(1000, 20.0, 150.0, 12.0, 0.0, 0.0, 1000, machine_cpu=60.0,
                            cpu_by_process=spent)  # fmt: skip
    rest = 60.0 - 12.0
    assert figures.processes_line() == (
        "cpu by process: kube-apiserver=30.0s operator=12.0s etcd=8.5s kubectl=4.0s "
        f"kube-scheduler=3.0s other=2.5s; without the operator's 12.0s: {rest:.1f} cpu-s = "
        f"at least {rest / bench.CORES:.1f}s on {bench.CORES} cores (all-jobs 20.0s)"
    )
    # Processes charged more than the machine's busy time (a VM's steal): no other, and
    # the floor is what they were charged.
    figures.machine_cpu = 50.0
    line = figures.processes_line()
    assert "other" not in line
    assert f"without the operator's 12.0s: {57.5 - 12.0:.1f} cpu-s" in line


def test_the_burst_is_watched_not_polled(cluster: Any, namespace: str) -> None:
    """The wait for the burst follows watches (what exists, then each change; a watch cut
    at its timeout resumed where it stopped), here the Jobs of a label, created and
    deleted, on the real API server; the resources' watch is the same with a test of
    each one's status."""
    from kubernetes import client

    bench = _module()
    batch: Any = client.BatchV1Api(cluster.api)

    def job(name: str, stage: str) -> dict[str, Any]:
        container = {"name": "c", "image": "busybox", "command": ["true"]}
        return {
            "metadata": {"name": name, "labels": {"bodypose.dev/stage": stage}},
            "spec": {"suspend": True, "template": {"spec": {
                "restartPolicy": "Never", "containers": [container]}}},
        }  # fmt: skip

    batch.create_namespaced_job(namespace, job("before", "export"))  # there at the start
    with bench._Watched(
        cluster.api, "batch/v1/jobs", bench._any, "bodypose.dev/stage=export", namespace, timeout=1
    ) as exports:
        _until(lambda: exports.count() == 1)
        batch.create_namespaced_job(namespace, job("during", "export"))
        batch.create_namespaced_job(namespace, job("a-build", "build"))  # not selected
        _until(lambda: exports.passing == {"before", "during"})
        time.sleep(2.5)  # past the watch call's 1 s timeout, twice: resumed, nothing counted twice
        batch.delete_namespaced_job("before", namespace)
        _until(lambda: exports.passing == {"during"})
        assert exports.count() == 1


def _until(condition: Any, seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the watch did not follow"
        time.sleep(0.05)
