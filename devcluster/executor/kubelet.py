"""The executor's kubelet loop: watches pods bound to a node, runs each one's init
containers then its container (devcluster/executor/container_run.py) from the spec
resolved by devcluster/executor/pod_spec.py, and posts the statuses a kubelet posts."""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import urllib3.exceptions
from kubernetes import watch
from kubernetes.client.exceptions import ApiException

from devcluster.containers import ConfigError
from devcluster.executor import container_run
from devcluster.executor.container_run import PodRun, kill
from devcluster.executor.pod_spec import ApiEndpoint, PodSpecResolver
from devcluster.executor.status import conditions as pod_conditions
from devcluster.executor.status import container_status, now, pod_failed
from devcluster.executor.status import state as container_state
from devcluster.image_store import Image, ImageStore

log = logging.getLogger("pod-executor")
T = TypeVar("T")

CONFIG_RETRY_SECONDS = 2.0
# The kubelet's image pull back-off: 10 s doubling to 300 s; shorter here, where a
# missing image is usually one a developer is about to load.
PULL_BACKOFF_SECONDS = (2.0, 4.0, 8.0, 15.0)
DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"


class PodExecutor:
    def __init__(
        self, core: Any, work_dir: Path, log_dir: Path, images: ImageStore, api: ApiEndpoint
    ) -> None:
        self.core = core
        self.work_dir = work_dir
        self.log_dir = log_dir
        self.images = images
        self.resolver = PodSpecResolver(core, api)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._runs: dict[str, PodRun] = {}
        self._ips: dict[str, str | None] = {}

    # ---- the watch -------------------------------------------------------------------
    def run(self) -> None:
        """Watch bound pods until stop(); every (re)list re-offers every pod, and
        pods already seen are skipped, so no event can be lost across restarts."""
        while not self._stop.is_set():
            try:
                for event in watch.Watch().stream(  # type: ignore[no-untyped-call]
                    self.core.list_pod_for_all_namespaces,
                    field_selector="spec.nodeName!=",
                    timeout_seconds=30,
                ):
                    if self._stop.is_set():
                        break
                    self._on_event(event["type"], event["object"])
            except Exception:  # a broken watch is re-listed; pods show any harm
                if not self._stop.is_set():
                    log.exception("pod watch failed; listing again")
                    self._stop.wait(1)

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            run.deleted.set()
            kill(run, grace=0)

    def _on_event(self, kind: str, pod: Any) -> None:
        uid = pod.metadata.uid
        with self._lock:
            run = self._runs.get(uid)
        if kind == "DELETED":
            return
        if pod.metadata.deletion_timestamp:
            if run and not run.deleted.is_set():
                run.deleted.set()
                grace = pod.metadata.deletion_grace_period_seconds
                threading.Thread(
                    target=self._stop_and_remove,
                    args=(run, pod, 30 if grace is None else grace),
                    daemon=True,
                ).start()
            elif run is None:
                self._remove(pod)  # nothing of ours runs for it (finished, or never started)
            return
        if run or not pod.spec.node_name or pod.status.phase not in (None, "Pending"):
            return
        name = f"{pod.metadata.namespace}/{pod.metadata.name}"
        run = PodRun(
            pod=pod,
            work=self.work_dir / f"{pod.metadata.namespace}_{pod.metadata.name}_{uid[:8]}",
            logs=self.log_dir / pod.metadata.namespace / pod.metadata.name,
            grace_seconds=pod.spec.termination_grace_period_seconds or 30,
        )
        with self._lock:
            self._runs[uid] = run
        log.info("pod %s bound to %s: starting", name, pod.spec.node_name)
        threading.Thread(target=self._run_pod, args=(run,), name=name, daemon=True).start()

    def _stop_and_remove(self, run: PodRun, pod: Any, grace: int) -> None:
        """A graceful deletion as a kubelet carries it out: the containers stopped, the pod
        put in a terminal phase (Failed: they were killed), then removed. The phase matters:
        with a pod failure policy the Job controller replaces a deleted pod only once it is
        terminal, and a pod removed while still Running left its Job waiting for ever."""
        kill(run, grace)
        killed = container_state("terminated", exitCode=137, reason="Error", finishedAt=now(),
                        message="killed: the pod was deleted")  # fmt: skip
        statuses = [container_status(c, killed) for c in run.pod.spec.containers]
        final = {"phase": "Failed", "containerStatuses": statuses,
                 **pod_conditions(ready=False, reason="PodCompleted")}  # fmt: skip
        self._post(run, final, last_word=True)
        self._remove(pod)

    def _remove(self, pod: Any) -> None:
        """Finish a graceful deletion, as a kubelet does once the pod's containers are gone:
        delete it again with no grace period (the API server keeps a bound pod, Terminating,
        until its node says so; its Job makes no replacement meanwhile)."""
        meta = pod.metadata
        try:
            self.core.delete_namespaced_pod(
                meta.name, meta.namespace, grace_period_seconds=0,
                body={"gracePeriodSeconds": 0, "preconditions": {"uid": meta.uid}},
            )  # fmt: skip
        except ApiException as exc:
            if exc.status not in (404, 409):
                log.warning("pod %s/%s: could not finish its deletion: %s",
                            meta.namespace, meta.name, exc.reason)  # fmt: skip
        except urllib3.exceptions.HTTPError as exc:
            log.warning("pod %s/%s: could not finish its deletion: %s",
                        meta.namespace, meta.name, exc)  # fmt: skip

    # ---- one pod ---------------------------------------------------------------------
    def _post(self, run: PodRun, status: dict[str, Any], last_word: bool = False) -> None:
        if run.deleted.is_set() and not last_word:
            return  # the pod is going away: its terminal status comes from _stop_and_remove
        pod = run.pod
        # A kubelet keeps a pod's status until the API server takes it: an API server
        # restarted while a container ends must not lose the end (the Job would wait
        # for ever). Connection refused or a 5xx: try again, for up to ten minutes.
        deadline = time.monotonic() + 600
        while True:
            try:
                self.core.patch_namespaced_pod_status(
                    pod.metadata.name, pod.metadata.namespace, {"status": status}
                )
                return
            except ApiException as exc:
                if exc.status in (404, 409):
                    return
                if exc.status < 500 or time.monotonic() > deadline:
                    raise
            except urllib3.exceptions.HTTPError:
                if time.monotonic() > deadline:
                    raise
            if run.deleted.is_set() and not last_word:
                return
            log.warning("pod %s/%s: the API server did not take its status; trying again",
                        pod.metadata.namespace, pod.metadata.name)  # fmt: skip
            time.sleep(1)

    def _host_ip(self, node: str) -> str | None:
        if node not in self._ips:
            addresses = self.core.read_node(node).status.addresses or []
            self._ips[node] = next((a.address for a in addresses if a.type == "InternalIP"), None)
        return self._ips[node]

    def _run_pod(self, run: PodRun) -> None:
        pod = run.pod
        try:
            self._run_pod_inner(run)
        except Exception as exc:  # never leave a pod hanging in Pending silently
            log.exception("pod %s/%s: executor error", pod.metadata.namespace, pod.metadata.name)
            self._post(run, pod_failed("ExecutorError", str(exc)))
        finally:
            shutil.rmtree(run.work, ignore_errors=True)
            with self._lock:
                self._runs.pop(pod.metadata.uid, None)

    def _run_pod_inner(self, run: PodRun) -> None:
        spec = run.pod.spec
        if len(spec.containers) != 1:
            message = "the local executor runs pods with exactly one container"
            self._post(run, pod_failed("ExecutorUnsupported", message))
            return
        run.work.mkdir(parents=True, exist_ok=True)
        run.logs.mkdir(parents=True, exist_ok=True)
        deadline = None
        if spec.active_deadline_seconds:
            deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=spec.active_deadline_seconds)
        pod_fields: dict[str, Any] = {"startTime": now()}
        host_ip = self._host_ip(spec.node_name)
        if host_ip:
            # The processes share this machine's network, as with hostNetwork.
            ip = [{"ip": host_ip}]
            pod_fields.update(hostIP=host_ip, hostIPs=ip, podIP=host_ip, podIPs=ip)

        volumes = self._wait_for_config(
            run, spec.containers[0], lambda: self.resolver.volumes(run.pod, run.work)
        )
        if volumes is None:
            return
        init_statuses: list[dict[str, Any]] = []
        for container in spec.init_containers or []:
            final = self._run_container(run, container, volumes, deadline, pod_fields, init=True)
            if final is None:
                return
            init_statuses.append(final)
            self._post(run, {"initContainerStatuses": init_statuses})
            if final["state"]["terminated"]["exitCode"] != 0:
                self._post(
                    run, {"phase": "Failed", **pod_conditions(ready=False, reason="PodCompleted")}
                )
                return
        self._run_container(run, spec.containers[0], volumes, deadline, pod_fields, init=False)

    def _wait_for_config(
        self, run: PodRun, container: Any, resolve: Callable[[], T], key: str = "containerStatuses"
    ) -> T | None:
        """Resolve what a container needs; while a Secret/ConfigMap is missing, wait
        like a kubelet (status says why) until it appears or the pod is deleted."""
        reported = None
        while not run.deleted.is_set() and not self._stop.is_set():
            try:
                return resolve()
            except ConfigError as exc:
                if str(exc) != reported:
                    reported = str(exc)
                    waiting = container_state(
                        "waiting", reason="CreateContainerConfigError", message=reported
                    )
                    status = container_status(container, waiting)
                    self._post(run, {"phase": "Pending", key: [status]})
            run.deleted.wait(CONFIG_RETRY_SECONDS)
        return None

    def _pull(self, run: PodRun, container: Any, key: str) -> Image | None:
        """The container's image, waiting as a kubelet does while it cannot be pulled:
        ErrImagePull at each try, ImagePullBackOff between tries."""
        ref = container.image
        attempt = 0
        while not run.deleted.is_set() and not self._stop.is_set():
            image = self.images.resolve(ref)
            if image is not None:
                return image
            if container.image_pull_policy == "Never":
                reason = "ErrImageNeverPull"
                message = f'Container image "{ref}" is not present with pull policy of Never'
            else:
                reason = "ErrImagePull"
                message = (
                    f'failed to pull and unpack image "{ref}": not found: the local cluster '
                    "has no such image (load it: python -m devcluster.image_store load ARCHIVE)"
                )
            self._post_waiting(run, container, key, reason, message)
            wait = PULL_BACKOFF_SECONDS[min(attempt, len(PULL_BACKOFF_SECONDS) - 1)]
            attempt += 1
            if reason == "ErrImagePull":
                if run.deleted.wait(0.5):
                    return None
                self._post_waiting(
                    run, container, key, "ImagePullBackOff", f'Back-off pulling image "{ref}"'
                )
            if run.deleted.wait(wait):
                return None
        return None

    def _post_waiting(
        self, run: PodRun, container: Any, key: str, reason: str, message: str
    ) -> None:
        log.info("pod %s/%s: %s: %s", run.pod.metadata.namespace, run.pod.metadata.name,
                 reason, message)  # fmt: skip
        state = container_state("waiting", reason=reason, message=message)
        self._post(run, {"phase": "Pending", key: [container_status(container, state)]})

    def _run_container(
        self,
        run: PodRun,
        container: Any,
        volumes: dict[str, Path],
        deadline: dt.datetime | None,
        pod_fields: dict[str, Any],
        *,
        init: bool,
    ) -> dict[str, Any] | None:
        """Run one container to its end (restarting it under OnFailure); returns its
        final status, or None when the pod was deleted or its deadline passed."""
        key = "initContainerStatuses" if init else "containerStatuses"
        image = self._pull(run, container, key)
        if image is None:
            return None
        one = _Container(run, container, image, key, init, deadline, pod_fields)
        restarts = 0
        last_state: dict[str, Any] = {}
        while True:
            slot = run.work / "containers" / f"{container.name}-{restarts}"
            slot.mkdir(parents=True, exist_ok=True)
            spec = self._wait_for_config(
                run, container,
                lambda slot=slot: self.resolver.container_spec(  # type: ignore[misc]
                    run.pod, container, image, volumes, slot
                ),
                key,
            )  # fmt: skip
            if spec is None:
                return None
            ended = self._run_once(one, spec, slot, restarts, last_state)
            if ended is None:
                return None
            final, terminated = ended
            code = terminated["exitCode"]
            if code != 0 and run.pod.spec.restart_policy in ("OnFailure", "Always"):
                restarts += 1
                last_state = {"terminated": terminated}
                backoff = min(10.0, 2.0 ** (restarts - 1))
                why = f"back-off {backoff:.0f}s restarting the container"
                back_off = container_state("waiting", reason="CrashLoopBackOff", message=why)
                self._post(run, {key: [{**final, "state": back_off, "lastState": last_state}]})
                if run.deleted.wait(backoff):
                    return None
                continue
            if not init:
                pod_phase = "Succeeded" if code == 0 else "Failed"
                conditions = pod_conditions(ready=False, reason="PodCompleted")
                self._post(run, {"phase": pod_phase, key: [final], **conditions})
            return final

    def _run_once(
        self,
        one: _Container,
        spec: dict[str, Any],
        slot: Path,
        restarts: int,
        last_state: dict[str, Any],
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """One run of the container, its Running status posted: (its final status, its
        terminated state), or None when the pod was deleted or its deadline passed."""
        run, container, image, key = one.run, one.container, one.image, one.key
        pod = run.pod
        name = f"{pod.metadata.namespace}/{pod.metadata.name} {container.name}"
        output = run.logs / f"{container.name}.log"
        (slot / "spec.json").write_text(json.dumps(spec))
        begun = now()
        proc = container_run.start(slot / "spec.json", output)
        run.proc = proc
        ids: dict[str, Any] = {"containerID": f"local://{proc.pid}", "lastState": last_state}
        log.info("%s: pid %d, %.2fs after binding: %s", name, proc.pid,
                 time.monotonic() - run.bound_at, spec["argv"])  # fmt: skip
        running = container_status(
            container, container_state("running", startedAt=begun), restarts,
            ready=not one.init, started=True, image_id=image.image_id, **ids,
        )  # fmt: skip
        phase = "Pending" if one.init else "Running"
        conditions = pod_conditions(ready=not one.init, initialized=not one.init)
        self._post(run, {"phase": phase, **one.pod_fields, **conditions, key: [running]})
        code = container_run.wait(run, proc, one.deadline)
        if code is None:  # deleted, or past its deadline
            deadline = one.deadline
            if deadline and not run.deleted.is_set() and dt.datetime.now(dt.UTC) >= deadline:
                self._post(run, pod_failed("DeadlineExceeded", DEADLINE_MESSAGE))
            return None
        start_error = container_run.read_text(slot / "start-error")
        log.info("%s exited %d after %.1f CPU seconds%s", name, code, run.cpu_seconds,
                 f" ({start_error})" if start_error else "")  # fmt: skip
        if start_error:
            reason, message = "StartError", start_error
        else:
            reason = "Completed" if code == 0 else "Error"
            message = container_run.message(slot / "termination-log", output, code,
                                            container.termination_message_policy)  # fmt: skip
        terminated = {
            "exitCode": code, "reason": reason, "message": message, "startedAt": begun,
            "finishedAt": now(), "containerID": ids["containerID"],
        }  # fmt: skip
        final = container_status(
            container, container_state("terminated", **terminated), restarts,
            image_id=image.image_id, **ids,
        )  # fmt: skip
        return final, terminated


@dataclass(frozen=True)
class _Container:
    """One container of a pod being run, and what every run of it needs."""

    run: PodRun
    container: Any
    image: Image
    key: str  # its status list: "containerStatuses" or "initContainerStatuses"
    init: bool
    deadline: dt.datetime | None
    pod_fields: dict[str, Any]
