"""A pod's spec resolved as the kubelet resolves it: the environment (the image's, the
service variables, envFrom, env with secretKeyRef/configMapKeyRef/fieldRef, `$(VAR)`),
the volumes (emptyDir, secret, configMap, projected, downwardAPI) and each container's
command, mounts and identity: what devcluster/container_init.py is given.

A missing Secret, ConfigMap or key raises ConfigError (devcluster/containers.py); the
executor then waits with `CreateContainerConfigError`, as a kubelet does."""

from __future__ import annotations

import base64
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes.client.exceptions import ApiException

from devcluster.containers import (
    ConfigError,
    Identity,
    command_line,
    identity,
    image_env,
    working_dir,
)
from devcluster.image_store import Image

log = logging.getLogger("pod-executor")

DEFAULT_TERMINATION_PATH = "/dev/termination-log"
# Set on this machine for its CPU (older OpenBLAS builds misdetect it and compute
# wrong results); a node-level quirk, passed to every container like a runtime's
# default environment, never part of an image.
NODE_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_VAR_REF = re.compile(r"\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)")


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


def field_value(pod: Any, path: str) -> str:
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


class PodSpecResolver:
    """Reads what a pod's spec refers to (Secrets, ConfigMaps, service-account tokens)
    through `core` (a CoreV1Api) and writes it where the containers will see it."""

    def __init__(self, core: Any, api: ApiEndpoint) -> None:
        self.core = core
        self.api = api

    def read(self, kind: str, ns: str, name: str, optional: bool | None) -> dict[str, str]:
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

    def volumes(self, pod: Any, work: Path) -> dict[str, Path]:
        """Each volume of `pod` made under `work`, by name."""
        ns = pod.metadata.namespace
        out: dict[str, Path] = {}
        for volume in pod.spec.volumes or []:
            path = work / "volumes" / volume.name
            path.mkdir(parents=True, exist_ok=True)
            out[volume.name] = path
            if volume.empty_dir is not None:
                path.chmod(0o777)  # the kubelet's emptyDir: any pod user may write
            elif volume.secret is not None:
                data = self.read("secret", ns, volume.secret.secret_name, volume.secret.optional)
                _write_items(path, data, volume.secret.items, f"volume {volume.name!r}")
            elif volume.config_map is not None:
                source = volume.config_map
                data = self.read("configmap", ns, source.name, source.optional)
                _write_items(path, data, source.items, f"volume {volume.name!r}")
            elif volume.projected is not None:
                for projection in volume.projected.sources or []:
                    self._project(pod, path, projection)
            elif volume.downward_api is not None:
                for item in volume.downward_api.items or []:
                    _write_file(path / item.path, field_value(pod, item.field_ref.field_path))
            else:
                log.warning("volume %s: this kind is mounted empty", volume.name)
        return out

    def _project(self, pod: Any, path: Path, projection: Any) -> None:
        ns = pod.metadata.namespace
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
            data = self.read("configmap", ns, source.name, source.optional)
            _write_items(path, data, source.items, "projected volume")
        elif projection.secret is not None:
            source = projection.secret
            data = self.read("secret", ns, source.name, source.optional)
            _write_items(path, data, source.items, "projected volume")
        elif projection.downward_api is not None:
            for item in projection.downward_api.items or []:
                _write_file(path / item.path, field_value(pod, item.field_ref.field_path))

    def environment(self, pod: Any, container: Any, image: Image) -> dict[str, str]:
        ns = pod.metadata.namespace
        env: dict[str, str] = {k: os.environ[k] for k in NODE_ENV if k in os.environ}
        env.update(image_env(image.config))
        env["HOSTNAME"] = pod.metadata.name
        env.update(self.api.service_env())
        for source in container.env_from or []:
            ref = source.secret_ref or source.config_map_ref
            kind = "secret" if source.secret_ref else "configmap"
            data = self.read(kind, ns, ref.name, ref.optional)
            env.update({f"{source.prefix or ''}{k}": v for k, v in data.items()})
        for var in container.env or []:
            source = var.value_from
            if source is None:
                env[var.name] = expand(var.value or "", env)
                continue
            ref = source.secret_key_ref or source.config_map_key_ref
            if ref is not None:
                kind = "secret" if source.secret_key_ref else "configmap"
                data = self.read(kind, ns, ref.name, ref.optional)
                if ref.key in data:
                    env[var.name] = data[ref.key]
                elif not ref.optional:
                    # The kubelet's words (pkg/kubelet/kubelet_pods.go, makeEnvironmentVariables).
                    kind_name = "Secret" if kind == "secret" else "ConfigMap"
                    raise ConfigError(f"couldn't find key {ref.key} in {kind_name} {ns}/{ref.name}")
            elif source.field_ref is not None:
                env[var.name] = field_value(pod, source.field_ref.field_path)
            else:
                raise ConfigError(
                    f"env {var.name}: only value, secretKeyRef, configMapKeyRef "
                    "and fieldRef are supported by the local executor"
                )
        return env

    def container_spec(
        self, pod: Any, container: Any, image: Image, volumes: dict[str, Path], slot: Path
    ) -> dict[str, Any]:
        """What container_init.py needs: the image, mounts, process and identity."""
        env = self.environment(pod, container, image)
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
