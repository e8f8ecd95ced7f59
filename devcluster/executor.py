"""TEST INFRASTRUCTURE ONLY: a stand-in kubelet that runs pods as local processes.

kwok plays the kubelet for the fake nodes, but it only pretends: its pods never
run. For pods labelled `bodypose.dev/executor=local` that the real scheduler has
bound to a node, this program does what a kubelet does, with local processes
instead of containers, so the exporter really runs inside a Job:

- resolves the container's environment the kubelet's way: `envFrom` first, then
  `env` in order (literal `value`, `secretKeyRef`, `configMapKeyRef`, `fieldRef`
  for the pod's name, namespace, uid, node, service account, labels and
  annotations; `optional` refs may be missing), with `$(VAR)` references
  expanded in env values, command and args (`$$` escapes);
- a missing Secret, ConfigMap or key leaves the pod Pending with the container
  waiting in `CreateContainerConfigError`, retried every two seconds, as a
  kubelet does;
- runs init containers in order, then the one main container, as
  `command + args` (the image is not used: the process runs on this machine);
- posts the pod's status as a kubelet would: Running (conditions, start time,
  host and pod IP, container state), then Succeeded or Failed with the exit
  code (128+N for signal N), the termination message, restart count;
  `restartPolicy: OnFailure` restarts a failed container with back-off;
  `activeDeadlineSeconds` kills it (phase Failed, reason DeadlineExceeded);
  deleting the pod kills it (SIGTERM, SIGKILL after the grace period).

How a pod's filesystem maps onto this machine (decided here, relied on by tests):

- every volume becomes a directory under the pod's work directory: `emptyDir`
  empty, `secret` and `configMap` filled with their keys (or `items`), any other
  kind empty (and logged);
- every command/arg, env value and `workingDir` that equals a volumeMount's
  `mountPath` or starts with `mountPath/` is rewritten to that directory, so
  `--out /scratch/x` writes into the emptyDir; a container without workingDir
  starts in the pod's work directory;
- `terminationMessagePath` (default /dev/termination-log) becomes a file in the
  pod's work directory; its path reaches the process in the environment
  variable BODYPOSE_TERMINATION_LOG (always set, overriding the pod's value),
  and args or env values equal to the original path are rewritten to it; the
  message is read after exit (at most 4096 bytes) and, with
  `terminationMessagePolicy: FallbackToLogsOnError` and a failed container
  whose message is empty, the tail of its output is used instead (last 80 lines,
  at most 2048 bytes: the kubelet's limits);
- the process's environment starts from what an image would provide (PATH with
  this Python's bin directory first, so `python` and `bpnet-export` are the
  checkout's; locale; TLS CA bundle variables; OpenBLAS settings this machine
  needs), then the pod's; HOME defaults to the pod's work directory;
- stdout and stderr go to `<log dir>/<namespace>/<pod>/<container>.log`, kept
  after the pod ends (`kubectl logs` does not reach them);
- not emulated: images, users and security contexts (processes run as the
  executor's user), resource limits, probes, sidecars, more than one main
  container (such a pod is failed with reason ExecutorUnsupported), projected
  service-account tokens.

kwok's pod stages skip these pods (hack/cluster/kwok-stages.yaml), except the
one that completes a deletion. Run it as `python -m devcluster.executor
--kubeconfig FILE --work-dir DIR` (the local control plane starts it).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

log = logging.getLogger("pod-executor")
T = TypeVar("T")

EXECUTOR_LABEL = "bodypose.dev/executor"
EXECUTOR_VALUE = "local"
TERMINATION_LOG_ENV = "BODYPOSE_TERMINATION_LOG"
DEFAULT_TERMINATION_PATH = "/dev/termination-log"
# The kubelet's limits for a termination message and for the log fallback.
MAX_MESSAGE_BYTES = 4096
FALLBACK_LINES = 80
FALLBACK_BYTES = 2048
CONFIG_RETRY_SECONDS = 2.0
DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"
# Host variables that stand in for an image's own ENV lines.
IMAGE_ENV = (
    "LANG",
    "LC_ALL",
    "TZ",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "AWS_CA_BUNDLE",
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
)
_VAR_REF = re.compile(r"\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)")


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ConfigError(Exception):
    """What a kubelet reports as CreateContainerConfigError: the pod waits."""


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion: defined names are replaced, `$$` is a literal `$`,
    and references to undefined names stay as written."""

    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return _VAR_REF.sub(sub, value)


def _decode(data: dict[str, str] | None) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (data or {}).items()}


def _field_value(pod: Any, path: str) -> str:
    meta = pod.metadata
    simple = {
        "metadata.name": meta.name,
        "metadata.namespace": meta.namespace,
        "metadata.uid": meta.uid,
        "spec.nodeName": pod.spec.node_name,
        "spec.serviceAccountName": pod.spec.service_account_name,
        "status.hostIP": pod.status.host_ip,
        "status.podIP": pod.status.pod_ip,
    }
    if path in simple:
        return str(simple[path] or "")
    found = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    if found:
        values = (meta.labels if found.group(1) == "labels" else meta.annotations) or {}
        return str(values.get(found.group(2), ""))
    raise ConfigError(f"fieldRef {path!r} is not supported by the test executor")


@dataclass
class PodRun:
    """One pod this executor owns: its directories and its running process."""

    pod: Any
    work: Path
    logs: Path
    deleted: threading.Event = field(default_factory=threading.Event)
    proc: subprocess.Popen[bytes] | None = None
    grace_seconds: int = 30


class PodExecutor:
    def __init__(self, core: Any, work_dir: Path, log_dir: Path) -> None:
        self.core = core
        self.work_dir = work_dir
        self.log_dir = log_dir
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._runs: dict[str, PodRun] = {}
        self._ips: dict[str, str | None] = {}

    # ---- the watch -------------------------------------------------------------------
    def run(self) -> None:
        """Watch our pods until stop(); every (re)list re-offers every pod, and
        pods already seen are skipped, so no event can be lost across restarts."""
        while not self._stop.is_set():
            try:
                for event in watch.Watch().stream(  # type: ignore[no-untyped-call]
                    self.core.list_pod_for_all_namespaces,
                    label_selector=f"{EXECUTOR_LABEL}={EXECUTOR_VALUE}",
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
            _kill(run, grace=0)

    def _on_event(self, kind: str, pod: Any) -> None:
        uid = pod.metadata.uid
        with self._lock:
            run = self._runs.get(uid)
        if kind == "DELETED" or pod.metadata.deletion_timestamp:
            if run and not run.deleted.is_set():
                run.deleted.set()
                grace = pod.metadata.deletion_grace_period_seconds
                threading.Thread(
                    target=_kill, args=(run, 30 if grace is None else grace), daemon=True
                ).start()
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

    # ---- one pod ---------------------------------------------------------------------
    def _post(self, run: PodRun, status: dict[str, Any]) -> None:
        if run.deleted.is_set():
            return  # the pod is going away: a kubelet's last word would be lost too
        pod = run.pod
        try:
            self.core.patch_namespaced_pod_status(
                pod.metadata.name, pod.metadata.namespace, {"status": status}
            )
        except ApiException as exc:
            if exc.status not in (404, 409):
                raise

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
            self._post(run, _pod_failed("ExecutorError", str(exc)))
        finally:
            shutil.rmtree(run.work, ignore_errors=True)
            with self._lock:
                self._runs.pop(pod.metadata.uid, None)

    def _run_pod_inner(self, run: PodRun) -> None:
        spec = run.pod.spec
        if len(spec.containers) != 1:
            message = "the test executor runs pods with exactly one container"
            self._post(run, _pod_failed("ExecutorUnsupported", message))
            return
        run.work.mkdir(parents=True, exist_ok=True)
        run.logs.mkdir(parents=True, exist_ok=True)
        deadline = None
        if spec.active_deadline_seconds:
            deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=spec.active_deadline_seconds)
        pod_fields: dict[str, Any] = {"startTime": _now()}
        host_ip = self._host_ip(spec.node_name)
        if host_ip:
            # The processes share this machine's network, as with hostNetwork.
            ip = [{"ip": host_ip}]
            pod_fields.update(hostIP=host_ip, hostIPs=ip, podIP=host_ip, podIPs=ip)

        volumes = self._wait_for_config(run, lambda: self._volumes(run))
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
                    run, {"phase": "Failed", **_conditions(ready=False, reason="PodCompleted")}
                )
                return
        self._run_container(run, spec.containers[0], volumes, deadline, pod_fields, init=False)

    def _wait_for_config(self, run: PodRun, resolve: Callable[[], T]) -> T | None:
        """Resolve what a container needs; while a Secret/ConfigMap is missing, wait
        like a kubelet (status says why) until it appears or the pod is deleted."""
        reported = None
        while not run.deleted.is_set() and not self._stop.is_set():
            try:
                return resolve()
            except ConfigError as exc:
                if str(exc) != reported:
                    reported = str(exc)
                    state = _state("waiting", reason="CreateContainerConfigError", message=reported)
                    status = _container_status(run.pod.spec.containers[0], state)
                    self._post(run, {"phase": "Pending", "containerStatuses": [status]})
            run.deleted.wait(CONFIG_RETRY_SECONDS)
        return None

    def _volumes(self, run: PodRun) -> dict[str, Path]:
        ns = run.pod.metadata.namespace
        out: dict[str, Path] = {}
        for volume in run.pod.spec.volumes or []:
            path = run.work / "volumes" / volume.name
            path.mkdir(parents=True, exist_ok=True)
            out[volume.name] = path
            source = volume.secret or volume.config_map
            if source is None:
                # A projected service-account token would be useless: in-cluster
                # clients read it from a fixed path this process cannot see.
                if not (volume.empty_dir or volume.projected):
                    log.warning("volume %s: only emptyDir, secret and configMap have content",
                                volume.name)  # fmt: skip
                continue
            if volume.secret:
                data = self._read("secret", ns, volume.secret.secret_name, source.optional)
            else:
                data = self._read("configmap", ns, volume.config_map.name, source.optional)
            files = (
                [(i.key, i.path) for i in source.items] if source.items else [(k, k) for k in data]
            )
            for key, name in files:
                if key not in data:
                    raise ConfigError(f"volume {volume.name!r}: no key {key!r}")
                (path / name).parent.mkdir(parents=True, exist_ok=True)
                (path / name).write_text(data[key])
        return out

    def _read(self, kind: str, ns: str, name: str, optional: bool | None) -> dict[str, str]:
        try:
            if kind == "secret":
                return _decode(self.core.read_namespaced_secret(name, ns).data)
            return dict(self.core.read_namespaced_config_map(name, ns).data or {})
        except ApiException as exc:
            if exc.status == 404:
                if optional:
                    return {}
                raise ConfigError(f'{kind} "{name}" not found') from None
            raise

    def _environment(self, pod: Any, container: Any) -> dict[str, str]:
        ns = pod.metadata.namespace
        env: dict[str, str] = {}
        for source in container.env_from or []:
            ref = source.secret_ref or source.config_map_ref
            kind = "secret" if source.secret_ref else "configmap"
            data = self._read(kind, ns, ref.name, ref.optional)
            env.update({f"{source.prefix or ''}{k}": v for k, v in data.items()})
        for var in container.env or []:
            source = var.value_from
            if source is None:
                env[var.name] = expand(var.value or "", env)
                continue
            ref = source.secret_key_ref or source.config_map_key_ref
            if ref is not None:
                kind = "secret" if source.secret_key_ref else "configmap"
                data = self._read(kind, ns, ref.name, ref.optional)
                if ref.key in data:
                    env[var.name] = data[ref.key]
                elif not ref.optional:
                    raise ConfigError(f"couldn't find key {ref.key} in {kind} {ns}/{ref.name}")
            elif source.field_ref is not None:
                env[var.name] = _field_value(pod, source.field_ref.field_path)
            else:
                raise ConfigError(
                    f"env {var.name}: only value, secretKeyRef, configMapKeyRef "
                    "and fieldRef are supported by the test executor"
                )
        return env

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
        pod = run.pod
        name = f"{pod.metadata.namespace}/{pod.metadata.name} {container.name}"
        key = "initContainerStatuses" if init else "containerStatuses"
        pod_env = self._wait_for_config(run, lambda: self._environment(pod, container))
        if pod_env is None:
            return None
        termination_path = container.termination_message_path or DEFAULT_TERMINATION_PATH
        message_file = run.work / f"termination-log-{container.name}"
        mounts = {
            vm.mount_path.rstrip("/") or "/": volumes[vm.name]
            for vm in container.volume_mounts or []
            if vm.name in volumes
        }

        def local(value: str) -> str:
            if value == termination_path:
                return str(message_file)
            for mount, path in mounts.items():
                if value == mount or value.startswith(mount + "/"):
                    return str(path) + value[len(mount) :]
            return value

        env = {k: os.environ[k] for k in IMAGE_ENV if k in os.environ}
        env["HOME"] = str(run.work)
        env.update({k: local(v) for k, v in pod_env.items()})
        bin_dir = str(Path(sys.executable).parent)
        env["PATH"] = os.pathsep.join([bin_dir, pod_env.get("PATH", os.environ.get("PATH", ""))])
        env[TERMINATION_LOG_ENV] = str(message_file)
        command = (container.command or []) + (container.args or [])
        argv = [local(expand(arg, pod_env)) for arg in command]
        cwd = local(container.working_dir) if container.working_dir else str(run.work)
        output = run.logs / f"{container.name}.log"

        restarts = 0
        last_state: dict[str, Any] = {}
        while True:
            message_file.unlink(missing_ok=True)
            begun = _now()
            with output.open("ab") as out:
                try:
                    proc = subprocess.Popen(
                        argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )  # fmt: skip
                except OSError as exc:  # what a runtime reports as StartError
                    out.write(f"{exc}\n".encode())
                    proc = None
            ids: dict[str, Any] = {
                "containerID": f"local://{proc.pid if proc else 0}",
                "lastState": last_state,
            }
            code: int | None = 128
            if proc is not None:
                run.proc = proc
                log.info("%s: pid %d: %s", name, proc.pid, argv)
                running = _container_status(
                    container, _state("running", startedAt=begun), restarts, ready=not init,
                    started=True, **ids,
                )  # fmt: skip
                phase = "Pending" if init else "Running"
                conditions = _conditions(ready=not init, initialized=not init)
                self._post(run, {"phase": phase, **pod_fields, **conditions, key: [running]})
                code = _wait(run, proc, deadline)
            if code is None:  # deleted, or past its deadline
                if deadline and not run.deleted.is_set() and dt.datetime.now(dt.UTC) >= deadline:
                    self._post(run, _pod_failed("DeadlineExceeded", DEADLINE_MESSAGE))
                return None
            log.info("%s exited %d", name, code)
            reason = "Completed" if code == 0 else "Error" if proc else "StartError"
            message = _message(message_file, output, code, container.termination_message_policy)
            terminated = {
                "exitCode": code, "reason": reason, "message": message, "startedAt": begun,
                "finishedAt": _now(), "containerID": ids["containerID"],
            }  # fmt: skip
            final = _container_status(
                container, _state("terminated", **terminated), restarts, **ids
            )
            if code != 0 and pod.spec.restart_policy in ("OnFailure", "Always"):
                restarts += 1
                last_state = {"terminated": terminated}
                backoff = min(10.0, 2.0 ** (restarts - 1))
                why = f"back-off {backoff:.0f}s restarting the container"
                back_off = _state("waiting", reason="CrashLoopBackOff", message=why)
                self._post(run, {key: [{**final, "state": back_off, "lastState": last_state}]})
                if run.deleted.wait(backoff):
                    return None
                continue
            if not init:
                pod_phase = "Succeeded" if code == 0 else "Failed"
                conditions = _conditions(ready=False, reason="PodCompleted")
                self._post(run, {"phase": pod_phase, key: [final], **conditions})
            return final


def _state(kind: str, **fields: Any) -> dict[str, Any]:
    """A container state. The other two kinds are nulled, so that the strategic
    merge patch replaces the previous state instead of merging into it."""
    return {k: (fields if k == kind else None) for k in ("waiting", "running", "terminated")}


def _container_status(
    container: Any, state: dict[str, Any], restarts: int = 0, *, ready: bool = False,
    started: bool = False, **extra: Any,
) -> dict[str, Any]:  # fmt: skip
    return {
        "name": container.name, "image": container.image,
        "imageID": f"local://{container.image}", "ready": ready, "started": started,
        "restartCount": restarts, "state": state, **extra,
    }  # fmt: skip


def _pod_failed(reason: str, message: str) -> dict[str, Any]:
    return {"phase": "Failed", "reason": reason, "message": message,
            **_conditions(ready=False, reason="PodCompleted")}  # fmt: skip


def _conditions(
    *, ready: bool, reason: str | None = None, initialized: bool = True
) -> dict[str, Any]:
    now = _now()
    conditions = [
        {"type": "PodReadyToStartContainers", "status": "True", "lastTransitionTime": now},
        {"type": "Initialized", "status": str(initialized), "lastTransitionTime": now},
    ]
    for kind in ("ContainersReady", "Ready"):
        condition = {"type": kind, "status": str(ready), "lastTransitionTime": now}
        if reason:
            condition["reason"] = reason
        conditions.append(condition)
    return {"conditions": conditions}


def _wait(run: PodRun, proc: subprocess.Popen[bytes], deadline: dt.datetime | None) -> int | None:
    """The exit code (128+N for signal N, as container runtimes report it), or
    None if the pod was deleted or its activeDeadlineSeconds passed first."""
    while True:
        try:
            code = proc.wait(timeout=0.5)
            return 128 - code if code < 0 else code
        except subprocess.TimeoutExpired:
            pass
        if run.deleted.is_set():
            return None
        if deadline and dt.datetime.now(dt.UTC) >= deadline:
            _kill(run, grace=run.grace_seconds)
            return None


def _kill(run: PodRun, grace: int) -> None:
    """SIGTERM the container's process group, SIGKILL after the grace period."""
    proc = run.proc
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=max(grace, 0.1))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def _message(message_file: Path, output: Path, code: int, policy: str | None) -> str:
    data = message_file.read_bytes()[:MAX_MESSAGE_BYTES] if message_file.exists() else b""
    if not data and code != 0 and policy == "FallbackToLogsOnError":
        lines = output.read_bytes().splitlines(keepends=True)[-FALLBACK_LINES:]
        data = b"".join(lines)[-FALLBACK_BYTES:]
    return data.decode(errors="replace")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devcluster.executor", description=__doc__)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--work-dir", required=True, type=Path, help="pods' volumes live here")
    parser.add_argument("--log-dir", type=Path, help="container output (default: WORK_DIR/logs)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    api = config.new_client_from_config(args.kubeconfig)  # type: ignore[no-untyped-call]
    executor = PodExecutor(
        client.CoreV1Api(api), args.work_dir, args.log_dir or args.work_dir / "logs"
    )

    def leave(signum: int, _frame: object) -> None:
        # Raised in the main thread, this also breaks out of a blocking watch read.
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, leave)
    signal.signal(signal.SIGINT, leave)
    log.info("watching pods labelled %s=%s", EXECUTOR_LABEL, EXECUTOR_VALUE)
    try:
        executor.run()
    finally:
        # Cluster down, or the test session ending: the pods' processes end too.
        executor.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
