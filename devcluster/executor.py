"""The local cluster's kubelet for pods: runs each container inside its image.

kwok plays the kubelet for the fake nodes' heartbeats, but it only pretends
to run pods. For every pod the scheduler binds to a node, this program does
what a kubelet with a container runtime does (kwok's pod stages are off while
it runs, hack/cluster/kwok-stages.yaml):

- finds the image the container names among the images loaded into this
  cluster (devcluster/image_store.py); one that is not there waits with reason
  `ErrImagePull`, then `ImagePullBackOff` with back-off, and starts as soon as
  it is loaded (`imagePullPolicy: Never`: `ErrImageNeverPull`);
- resolves the environment the kubelet's way: the image's `Env`, then the
  service variables (KUBERNETES_SERVICE_HOST/PORT point at the API server on
  loopback: the Service's virtual IP is routed nowhere here), then `envFrom`,
  then `env` in order (literal `value`, `secretKeyRef`, `configMapKeyRef`,
  `fieldRef`; `optional` refs may be missing), `$(VAR)` expanded in env values,
  command and args (`$$` escapes);
- argv, working directory and user from the pod and the image together
  (devcluster/containers.py); `runAsNonRoot` refused for a root user;
- volumes: `emptyDir` (world-writable, as the kubelet makes it), `secret`,
  `configMap`, `projected` (service-account token from the TokenRequest API
  bound to the pod, the cluster CA, the namespace: what the ServiceAccount
  admission plugin injects as kube-api-access-*, so in-cluster clients talk to
  the API server as the pod's ServiceAccount and RBAC applies) and
  `downwardAPI`; each bound at its mountPath, `subPath` honoured;
- a missing Secret, ConfigMap or key leaves the pod Pending with the container
  waiting in `CreateContainerConfigError`, retried every two seconds;
- runs init containers in order, then the one main container, in their own
  mount and PID namespaces, chrooted into an overlay of the image
  (devcluster/container_init.py), with `readOnlyRootFilesystem` honoured;
- posts the pod's status as a kubelet would: Running (conditions, start time,
  host and pod IP, container state with the image's digest as `imageID`), then
  Succeeded or Failed with the exit code (128+N for signal N), the termination
  message (read from the file bound at `terminationMessagePath`, at most 4096
  bytes; `FallbackToLogsOnError` takes the log tail: 80 lines, 2048 bytes),
  restart count; a command the image lacks ends as `StartError`, exit 128, with
  the runtime's message; `restartPolicy: OnFailure` restarts with back-off;
  `activeDeadlineSeconds` kills (phase Failed, reason DeadlineExceeded);
  deleting the pod kills it (SIGTERM, SIGKILL after the grace period), then
  removes it, as a kubelet confirms a graceful deletion;
- stdout and stderr go to `<log dir>/<namespace>/<pod>/<container>.log`, kept
  after the pod ends (`kubectl logs` does not reach them).

Not emulated: networking (pods share the machine's network, as with
hostNetwork), resource limits, probes, sidecars, more than one main container
(such a pod is failed with reason ExecutorUnsupported), capabilities and
seccomp beyond running as the pod's user.

Run it as `python -m devcluster.executor --kubeconfig FILE --work-dir DIR
--images FILE` (the local control plane starts it).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import urllib3.exceptions
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from devcluster.containers import (
    ConfigError,
    Identity,
    command_line,
    identity,
    image_env,
    working_dir,
)
from devcluster.image_store import Image, ImageStore

log = logging.getLogger("pod-executor")
T = TypeVar("T")

INIT = Path(__file__).resolve().parent / "container_init.py"
DEFAULT_TERMINATION_PATH = "/dev/termination-log"
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
# The kubelet's limits for a termination message and for the log fallback.
MAX_MESSAGE_BYTES = 4096
FALLBACK_LINES = 80
FALLBACK_BYTES = 2048
CONFIG_RETRY_SECONDS = 2.0
# The kubelet's image pull back-off: 10 s doubling to 300 s; shorter here, where a
# missing image is usually one a developer is about to load.
PULL_BACKOFF_SECONDS = (2.0, 4.0, 8.0, 15.0)
DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"
START_ERROR_EXIT = 128
# Set on this machine for its CPU (older OpenBLAS builds misdetect it and compute
# wrong results); a node-level quirk, passed to every container like a runtime's
# default environment, never part of an image.
NODE_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_VAR_REF = re.compile(r"\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)")


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
    raise ConfigError(f"fieldRef {path!r} is not supported by the local executor")


@dataclass
class PodRun:
    """One pod this executor owns: its directories and its running process."""

    pod: Any
    work: Path
    logs: Path
    bound_at: float = field(default_factory=time.monotonic)
    deleted: threading.Event = field(default_factory=threading.Event)
    proc: subprocess.Popen[bytes] | None = None
    grace_seconds: int = 30
    cpu_seconds: float = 0.0  # of the last container run, user + system


@dataclass(frozen=True)
class ApiEndpoint:
    """Where pods reach the API server: what the `kubernetes` Service stands for."""

    host: str
    port: int

    def service_env(self) -> dict[str, str]:
        url = f"tcp://{self.host}:{self.port}"
        return {
            "KUBERNETES_SERVICE_HOST": self.host,
            "KUBERNETES_SERVICE_PORT": str(self.port),
            "KUBERNETES_SERVICE_PORT_HTTPS": str(self.port),
            "KUBERNETES_PORT": url,
            "KUBERNETES_PORT_443_TCP": url,
            "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
            "KUBERNETES_PORT_443_TCP_PORT": str(self.port),
            "KUBERNETES_PORT_443_TCP_ADDR": self.host,
        }


class PodExecutor:
    def __init__(
        self, core: Any, work_dir: Path, log_dir: Path, images: ImageStore, api: ApiEndpoint
    ) -> None:
        self.core = core
        self.work_dir = work_dir
        self.log_dir = log_dir
        self.images = images
        self.api = api
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
            _kill(run, grace=0)

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
        _kill(run, grace)
        killed = _state("terminated", exitCode=137, reason="Error", finishedAt=_now(),
                        message="killed: the pod was deleted")  # fmt: skip
        statuses = [_container_status(c, killed) for c in run.pod.spec.containers]
        final = {"phase": "Failed", "containerStatuses": statuses,
                 **_conditions(ready=False, reason="PodCompleted")}  # fmt: skip
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
            self._post(run, _pod_failed("ExecutorError", str(exc)))
        finally:
            shutil.rmtree(run.work, ignore_errors=True)
            with self._lock:
                self._runs.pop(pod.metadata.uid, None)

    def _run_pod_inner(self, run: PodRun) -> None:
        spec = run.pod.spec
        if len(spec.containers) != 1:
            message = "the local executor runs pods with exactly one container"
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

        volumes = self._wait_for_config(run, spec.containers[0], lambda: self._volumes(run))
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
                    state = _state("waiting", reason="CreateContainerConfigError", message=reported)
                    status = _container_status(container, state)
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
        state = _state("waiting", reason=reason, message=message)
        self._post(run, {"phase": "Pending", key: [_container_status(container, state)]})

    def _volumes(self, run: PodRun) -> dict[str, Path]:
        ns = run.pod.metadata.namespace
        out: dict[str, Path] = {}
        for volume in run.pod.spec.volumes or []:
            path = run.work / "volumes" / volume.name
            path.mkdir(parents=True, exist_ok=True)
            out[volume.name] = path
            if volume.empty_dir is not None:
                path.chmod(0o777)  # the kubelet's emptyDir: any pod user may write
            elif volume.secret is not None:
                data = self._read("secret", ns, volume.secret.secret_name, volume.secret.optional)
                _write_items(path, data, volume.secret.items, f"volume {volume.name!r}")
            elif volume.config_map is not None:
                source = volume.config_map
                data = self._read("configmap", ns, source.name, source.optional)
                _write_items(path, data, source.items, f"volume {volume.name!r}")
            elif volume.projected is not None:
                for projection in volume.projected.sources or []:
                    self._project(run, path, projection)
            elif volume.downward_api is not None:
                for item in volume.downward_api.items or []:
                    _write_file(path / item.path, _field_value(run.pod, item.field_ref.field_path))
            else:
                log.warning("volume %s: this kind is mounted empty", volume.name)
        return out

    def _project(self, run: PodRun, path: Path, projection: Any) -> None:
        pod, ns = run.pod, run.pod.metadata.namespace
        if projection.service_account_token is not None:
            source = projection.service_account_token
            spec: dict[str, Any] = {
                # 3607 s is what the ServiceAccount admission plugin asks for; the
                # API server extends such tokens (--service-account-extend-token-
                # expiration), so this kubelet never has to refresh them.
                "expirationSeconds": source.expiration_seconds or 3607,
                "boundObjectRef": {
                    "kind": "Pod", "apiVersion": "v1",
                    "name": pod.metadata.name, "uid": pod.metadata.uid,
                },
            }  # fmt: skip
            if source.audience:
                spec["audiences"] = [source.audience]
            token = self.core.create_namespaced_service_account_token(
                pod.spec.service_account_name or "default", ns, {"spec": spec}
            ).status.token
            _write_file(path / source.path, token)
        elif projection.config_map is not None:
            source = projection.config_map
            data = self._read("configmap", ns, source.name, source.optional)
            _write_items(path, data, source.items, "projected volume")
        elif projection.secret is not None:
            source = projection.secret
            data = self._read("secret", ns, source.name, source.optional)
            _write_items(path, data, source.items, "projected volume")
        elif projection.downward_api is not None:
            for item in projection.downward_api.items or []:
                _write_file(path / item.path, _field_value(pod, item.field_ref.field_path))

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

    def _environment(self, pod: Any, container: Any, image: Image) -> dict[str, str]:
        ns = pod.metadata.namespace
        env: dict[str, str] = {k: os.environ[k] for k in NODE_ENV if k in os.environ}
        env.update(image_env(image.config))
        env["HOSTNAME"] = pod.metadata.name
        env.update(self.api.service_env())
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
                    # The kubelet's words (pkg/kubelet/kubelet_pods.go, makeEnvironmentVariables).
                    kind_name = "Secret" if kind == "secret" else "ConfigMap"
                    raise ConfigError(f"couldn't find key {ref.key} in {kind_name} {ns}/{ref.name}")
            elif source.field_ref is not None:
                env[var.name] = _field_value(pod, source.field_ref.field_path)
            else:
                raise ConfigError(
                    f"env {var.name}: only value, secretKeyRef, configMapKeyRef "
                    "and fieldRef are supported by the local executor"
                )
        return env

    def _container_spec(
        self, run: PodRun, container: Any, image: Image, volumes: dict[str, Path], slot: Path
    ) -> dict[str, Any]:
        """What container_init.py needs: the image, mounts, process and identity."""
        pod = run.pod
        env = self._environment(pod, container, image)
        who: Identity = identity(
            container.security_context, pod.spec.security_context, image.config, image.rootfs
        )
        mounts = []
        for vm in container.volume_mounts or []:
            if vm.name not in volumes:
                raise ConfigError(f"volumeMount {vm.name!r}: no such volume")
            source = volumes[vm.name] / (vm.sub_path or "")
            if vm.sub_path and not source.exists():
                source.mkdir(parents=True, mode=0o777)
            volume = next(v for v in pod.spec.volumes if v.name == vm.name)
            # The kubelet mounts secret, configMap, projected and downwardAPI read-only.
            read_only = bool(vm.read_only) or volume.empty_dir is None
            mounts.append({"source": str(source), "target": vm.mount_path, "readOnly": read_only})
        termination = slot / "termination-log"
        termination.write_bytes(b"")
        termination.chmod(0o666)
        mounts.append({
            "source": str(termination),
            "target": container.termination_message_path or DEFAULT_TERMINATION_PATH,
        })  # fmt: skip
        argv = [expand(a, env) for a in command_line(container.command, container.args,
                                                    image.config)]  # fmt: skip
        sc = container.security_context
        for name in ("upper", "work", "merged"):
            (slot / name).mkdir(exist_ok=True)
        return {
            "rootfs": str(image.rootfs),
            "upper": str(slot / "upper"),
            "work": str(slot / "work"),
            "merged": str(slot / "merged"),
            "readOnlyRoot": bool(sc is not None and sc.read_only_root_filesystem),
            "mounts": mounts,
            "argv": argv,
            "env": env,
            "cwd": working_dir(container.working_dir, image.config),
            "uid": who.uid,
            "gid": who.gid,
            "groups": list(who.groups),
            "startError": str(slot / "start-error"),
        }

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
        image = self._pull(run, container, key)
        if image is None:
            return None
        output = run.logs / f"{container.name}.log"
        restarts = 0
        last_state: dict[str, Any] = {}
        while True:
            slot = run.work / "containers" / f"{container.name}-{restarts}"
            slot.mkdir(parents=True, exist_ok=True)
            spec = self._wait_for_config(
                run, container,
                lambda slot=slot: self._container_spec(run, container, image, volumes, slot),  # type: ignore[misc]
                key,
            )  # fmt: skip
            if spec is None:
                return None
            (slot / "spec.json").write_text(json.dumps(spec))
            begun = _now()
            with output.open("ab") as out:
                proc = subprocess.Popen(
                    ["unshare", "--mount", "--pid", "--fork", "--propagation", "private", "--",
                     sys.executable, str(INIT), str(slot / "spec.json")],
                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )  # fmt: skip
            run.proc = proc
            ids: dict[str, Any] = {"containerID": f"local://{proc.pid}", "lastState": last_state}
            log.info("%s: pid %d, %.2fs after binding: %s", name, proc.pid,
                     time.monotonic() - run.bound_at, spec["argv"])  # fmt: skip
            running = _container_status(
                container, _state("running", startedAt=begun), restarts, ready=not init,
                started=True, image_id=image.image_id, **ids,
            )  # fmt: skip
            phase = "Pending" if init else "Running"
            conditions = _conditions(ready=not init, initialized=not init)
            self._post(run, {"phase": phase, **pod_fields, **conditions, key: [running]})
            code = _wait(run, proc, deadline)
            if code is None:  # deleted, or past its deadline
                if deadline and not run.deleted.is_set() and dt.datetime.now(dt.UTC) >= deadline:
                    self._post(run, _pod_failed("DeadlineExceeded", DEADLINE_MESSAGE))
                return None
            start_error = _read_text(slot / "start-error")
            log.info("%s exited %d after %.1f CPU seconds%s", name, code, run.cpu_seconds,
                     f" ({start_error})" if start_error else "")  # fmt: skip
            if start_error:
                reason, message = "StartError", start_error
            else:
                reason = "Completed" if code == 0 else "Error"
                message = _message(slot / "termination-log", output, code,
                                   container.termination_message_policy)  # fmt: skip
            terminated = {
                "exitCode": code, "reason": reason, "message": message, "startedAt": begun,
                "finishedAt": _now(), "containerID": ids["containerID"],
            }  # fmt: skip
            final = _container_status(
                container, _state("terminated", **terminated), restarts,
                image_id=image.image_id, **ids,
            )  # fmt: skip
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


def _write_file(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o644)


def _write_items(path: Path, data: dict[str, str], items: Any, what: str) -> None:
    files = [(i.key, i.path) for i in items] if items else [(k, k) for k in data]
    for key, name in files:
        if key not in data:
            raise ConfigError(f"{what}: no key {key!r}")
        _write_file(path / name, data[key])


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip()
    except FileNotFoundError:
        return ""


def _state(kind: str, **fields: Any) -> dict[str, Any]:
    """A container state. The other two kinds are nulled, so that the strategic
    merge patch replaces the previous state instead of merging into it."""
    return {k: (fields if k == kind else None) for k in ("waiting", "running", "terminated")}


def _container_status(
    container: Any, state: dict[str, Any], restarts: int = 0, *, ready: bool = False,
    started: bool = False, image_id: str = "", **extra: Any,
) -> dict[str, Any]:  # fmt: skip
    return {
        "name": container.name, "image": container.image, "imageID": image_id,
        "ready": ready, "started": started, "restartCount": restarts, "state": state, **extra,
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
        # wait4, not Popen.wait: its rusage is the container's CPU time, every process
        # of it included (each reaped its children, so their times are summed in).
        try:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        except ChildProcessError:  # reaped by _kill on another thread: deleted or timed out
            if run.deleted.is_set() or proc.returncode is None:
                return None
            return 128 - proc.returncode if proc.returncode < 0 else proc.returncode
        if pid:
            code = os.waitstatus_to_exitcode(status)
            proc.returncode = code
            run.cpu_seconds = usage.ru_utime + usage.ru_stime
            return 128 - code if code < 0 else code
        time.sleep(0.5)
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
    parser.add_argument("--images", required=True, type=Path,
                        help="the cluster's image index (devcluster/image_store.py)")  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    api = config.new_client_from_config(args.kubeconfig)  # type: ignore[no-untyped-call]
    server = urlparse(api.configuration.host)
    executor = PodExecutor(
        client.CoreV1Api(api),
        args.work_dir,
        args.log_dir or args.work_dir / "logs",
        ImageStore(args.images),
        ApiEndpoint(server.hostname or "127.0.0.1", server.port or 443),
    )

    def leave(signum: int, _frame: object) -> None:
        # Raised in the main thread, this also breaks out of a blocking watch read.
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, leave)
    signal.signal(signal.SIGINT, leave)
    log.info("running every pod bound to a node, from images in %s", args.images)
    try:
        executor.run()
    finally:
        # Cluster down, or the test session ending: the pods' processes end too.
        executor.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
