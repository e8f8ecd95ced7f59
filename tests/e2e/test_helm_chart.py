"""The Helm chart with the real helm binary: lint, template, values schema, install, RBAC.

`helm install` goes to the local control plane; the operator's pod does not run
there (no image registry), so what is checked is what the chart creates: the
CRD, the Deployment's security settings, and that the operator's service
account can do exactly what the operator needs and cannot read Secrets.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from devcluster.controlplane import LocalCluster

CHART = Path(__file__).resolve().parents[2] / "charts" / "bodypose-operator"


def helm_run(
    helm: Path, *args: str, kubeconfig: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {"HOME": str(Path.home()), "PATH": "/usr/bin:/bin"}
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    return subprocess.run([str(helm), *args], capture_output=True, text=True, env=env, timeout=120)


def rendered(helm: Path, *values: str) -> list[dict[str, Any]]:
    done = helm_run(helm, "template", "demo", str(CHART), "--namespace", "ops", *values)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def test_chart_lints_clean(helm: Path) -> None:
    done = helm_run(helm, "lint", "--strict", str(CHART))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout


def test_template_is_least_privilege_and_restricted(helm: Path) -> None:
    docs = rendered(helm, "--set", "s3CredentialsSecret=operator-s3")
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "ServiceAccount", "ClusterRole", "ClusterRoleBinding"} <= kinds
    role = next(d for d in docs if d["kind"] == "ClusterRole")
    granted = {r for rule in role["rules"] for r in rule["resources"]}
    assert "secrets" not in granted and "jobs" in granted
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    container = pod["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert container["envFrom"] == [{"secretRef": {"name": "operator-s3"}}]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("jobs.backoffLimit=-1", "at '/jobs/backoffLimit': minimum: got -1, want 0"),
        ("image.pullPolicy=Sometimes", "at '/image/pullPolicy': value must be one of"),
        ("replicas=2", "additional properties 'replicas' not allowed"),
    ],
)
def test_bad_values_are_refused_by_the_schema(helm: Path, flag: str, message: str) -> None:
    done = helm_run(helm, "template", "demo", str(CHART), "--set", flag)
    assert done.returncode != 0
    assert "values don't meet the specifications of the schema" in done.stderr
    assert message in done.stderr


def test_install_creates_the_crd_and_an_operator_that_cannot_read_secrets(
    cluster: LocalCluster, helm: Path, namespace: str
) -> None:
    done = helm_run(
        helm, "install", "bpe-test", str(CHART), "--namespace", namespace,
        "--set", "image.tag=test", kubeconfig=cluster.kubeconfig,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    try:
        crd = cluster.kubectl("get", "crd", "bodyposeexports.bodypose.dev", "-o", "yaml").stdout
        assert "shortNames:\n    - bpe" in crd
        deployment = cluster.kubectl("get", "deployment", "-n", namespace, "-o", "name").stdout
        assert "deployment.apps/bodypose-operator" in deployment

        sa = cluster.kubeconfig_for_service_account(namespace, "bodypose-operator")

        def can(*args: str) -> str:
            out = cluster.kubectl("auth", "can-i", *args, kubeconfig=sa, check=False)
            return out.stdout.strip()

        assert can("list", "bodyposeexports.bodypose.dev", "-A") == "yes"
        assert can("patch", "bodyposeexports.bodypose.dev/status", "-n", namespace) == "yes"
        assert can("create", "jobs.batch", "-n", namespace) == "yes"
        assert can("delete", "jobs.batch", "-n", namespace) == "yes"
        assert can("create", "events", "-n", namespace) == "yes"
        assert can("get", "secrets", "-n", namespace) == "no"
        assert can("create", "pods", "-n", namespace) == "no"
    finally:
        helm_run(
            helm, "uninstall", "bpe-test", "--namespace", namespace, kubeconfig=cluster.kubeconfig
        )
