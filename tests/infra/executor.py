"""TEST INFRASTRUCTURE ONLY: run exporter pods on fake nodes as local processes.

For pods bound to a node (by the real scheduler) that carry the label
`bodypose.dev/executor=local`, this plays the kubelet: it runs the container's
command and args as a local process with the pod's environment (literal
values, `secretKeyRef`, `configMapKeyRef`, `envFrom`), and posts the pod's
status the way a kubelet would: Running, then Succeeded or Failed with the
exit code and the termination message the process wrote.

Mapping of the pod's filesystem: each emptyDir volume mount becomes a fresh
temporary directory, and every arg, env value and workingDir that starts with
the mount path is rewritten to it; the termination message path becomes a
temporary file whose path the process gets in BODYPOSE_TERMINATION_LOG. The
process runs with this interpreter's bin directory first on PATH, so
`bpnet-export` is the checkout's. kwok's stages skip these pods
(hack/cluster/kwok-stages.yaml) except for deletion.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from kubernetes import client, watch

log = logging.getLogger("pod-executor")
EXECUTOR_LABEL = "bodypose.dev/executor"
MAX_MESSAGE = 4096


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class PodExecutor:
    def __init__(self, api_client: Any) -> None:
        self.core = client.CoreV1Api(api_client)
        self._stop = threading.Event()
        self._started: set[str] = set()
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="pod-executor", daemon=True)

    def start(self) -> PodExecutor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            for proc in self._procs.values():
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            w = watch.Watch()
            try:
                for event in w.stream(
                    self.core.list_pod_for_all_namespaces,
                    label_selector=f"{EXECUTOR_LABEL}=local",
                    timeout_seconds=5,
                ):
                    if self._stop.is_set():
                        break
                    self._handle(event["type"], event["object"])
            except Exception:  # the watch restarts; a test sees failures as pod states
                log.exception("watch failed; restarting")
                self._stop.wait(1)

    def _handle(self, kind: str, pod: Any) -> None:
        uid = pod.metadata.uid
        if kind == "DELETED" or pod.metadata.deletion_timestamp:
            with self._lock:
                proc = self._procs.pop(uid, None)
            if proc and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            return
        if not pod.spec.node_name or pod.status.phase not in (None, "Pending"):
            return
        with self._lock:
            if uid in self._started:
                return
            self._started.add(uid)
        threading.Thread(target=self._run, args=(pod,), daemon=True).start()

    def _secret_value(self, ns: str, name: str, key: str) -> str | None:
        data = self.core.read_namespaced_secret(name, ns).data or {}
        return base64.b64decode(data[key]).decode() if key in data else None

    def _environment(self, pod: Any, container: Any) -> dict[str, str]:
        ns = pod.metadata.namespace
        env: dict[str, str] = {}
        for source in container.env_from or []:
            if source.secret_ref:
                data = self.core.read_namespaced_secret(source.secret_ref.name, ns).data or {}
                env.update({k: base64.b64decode(v).decode() for k, v in data.items()})
            if source.config_map_ref:
                cm = self.core.read_namespaced_config_map(source.config_map_ref.name, ns)
                env.update(cm.data or {})
        for var in container.env or []:
            if var.value is not None:
                env[var.name] = var.value
            elif var.value_from and var.value_from.secret_key_ref:
                ref = var.value_from.secret_key_ref
                value = self._secret_value(ns, ref.name, ref.key)
                if value is None:
                    raise KeyError(f"secret {ref.name!r} has no key {ref.key!r}")
                env[var.name] = value
            elif var.value_from and var.value_from.config_map_key_ref:
                ref = var.value_from.config_map_key_ref
                cm = self.core.read_namespaced_config_map(ref.name, ns)
                env[var.name] = (cm.data or {})[ref.key]
        return env

    def _post(self, pod: Any, status: dict[str, Any]) -> None:
        self.core.patch_namespaced_pod_status(
            pod.metadata.name, pod.metadata.namespace, {"status": status}
        )

    def _run(self, pod: Any) -> None:
        container = pod.spec.containers[0]
        scratch = Path(tempfile.mkdtemp(prefix=f"pod-{pod.metadata.name}-"))
        mounts = {}
        for vm in container.volume_mounts or []:
            mounts[vm.mount_path] = scratch / vm.name
            mounts[vm.mount_path].mkdir(parents=True, exist_ok=True)

        def rewrite(value: str) -> str:
            for mount_path, local in mounts.items():
                if value == mount_path or value.startswith(mount_path.rstrip("/") + "/"):
                    return str(local) + value[len(mount_path.rstrip("/")) :]
            return value

        message_file = scratch / "termination-log"
        started = _now()
        try:
            env = {k: rewrite(v) for k, v in self._environment(pod, container).items()}
        except Exception as exc:  # what a kubelet reports as CreateContainerConfigError
            self._post(
                pod,
                {
                    "phase": "Pending",
                    "containerStatuses": [
                        {
                            "name": container.name,
                            "image": container.image,
                            "ready": False,
                            "restartCount": 0,
                            "state": {
                                "waiting": {
                                    "reason": "CreateContainerConfigError",
                                    "message": str(exc),
                                }
                            },
                        }
                    ],
                },
            )
            return
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        env["BODYPOSE_TERMINATION_LOG"] = str(message_file)
        for key in ("AWS_CA_BUNDLE", "SSL_CERT_FILE", "LANG"):
            if key in os.environ and key not in env:
                env[key] = os.environ[key]
        argv = [rewrite(a) for a in (container.command or []) + (container.args or [])]
        cwd = rewrite(container.working_dir) if container.working_dir else str(scratch)
        self._post(
            pod,
            {
                "phase": "Running",
                "startTime": started,
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [
                    {
                        "name": container.name,
                        "image": container.image,
                        "ready": True,
                        "restartCount": 0,
                        "state": {"running": {"startedAt": started}},
                    }
                ],
            },
        )
        output = scratch / "output.log"
        with output.open("wb") as out:
            try:
                proc = subprocess.Popen(
                    argv,
                    env=env,
                    cwd=cwd,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as exc:
                out.write(str(exc).encode())
                code = 127
            else:
                with self._lock:
                    self._procs[pod.metadata.uid] = proc
                code = proc.wait()
        message = message_file.read_text()[:MAX_MESSAGE] if message_file.exists() else ""
        if (
            not message
            and code != 0
            and container.termination_message_policy == "FallbackToLogsOnError"
        ):
            message = output.read_text(errors="replace")[-2048:]
        log.info("pod %s/%s exited %s", pod.metadata.namespace, pod.metadata.name, code)
        try:
            self._post(
                pod,
                {
                    "phase": "Succeeded" if code == 0 else "Failed",
                    "conditions": [{"type": "Ready", "status": "False"}],
                    "containerStatuses": [
                        {
                            "name": container.name,
                            "image": container.image,
                            "ready": False,
                            "restartCount": 0,
                            "state": {
                                "terminated": {
                                    "exitCode": code,
                                    "reason": "Completed" if code == 0 else "Error",
                                    "message": message,
                                    "startedAt": started,
                                    "finishedAt": _now(),
                                }
                            },
                        }
                    ],
                },
            )
        except client.exceptions.ApiException as exc:
            if exc.status != 404:  # deleted meanwhile: nothing to report to
                raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
