"""The Helm chart with the real helm binary: lint, template, values schema, install, RBAC.

`helm install` goes to the local control plane; the operator's pod does not run
there (no image registry), so what is checked is what the chart creates: the
CRD, the Deployment's security settings, and that the operator's service
account can do exactly what the operator needs and cannot read Secrets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from devcluster.controlplane import LocalCluster
from tests.support.helm import CHART, helm_run


def rendered(helm: Path, *values: str) -> list[dict[str, Any]]:
    done = helm_run(helm, "template", "demo", str(CHART), "--namespace", "ops", *values)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def test_chart_lints_clean(helm: Path) -> None:
    done = helm_run(helm, "lint", "--strict", str(CHART))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout


def operator_pod(docs: list[dict[str, Any]]) -> dict[str, Any]:
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    return dict(deployment["spec"]["template"]["spec"])


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def role_named(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def test_template_is_least_privilege_and_restricted(helm: Path) -> None:
    docs = rendered(helm)
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "ServiceAccount", "ClusterRole", "ClusterRoleBinding"} <= kinds
    role = role_named(docs, "ClusterRole", "bodypose-operator-demo")
    granted = {r for rule in role["rules"] for r in rule["resources"]}
    assert "secrets" not in granted and "jobs" in granted
    # No namespace list or watch (kopf needs none), no status update, no event patch.
    assert "namespaces" not in granted
    assert {"apiGroups": ["batch"], "resources": ["jobs"],
            "verbs": ["list", "watch", "create", "delete"]} in role["rules"]  # fmt: skip
    # Secrets: `get` only (the one a resource names for its S3 credentials), no list/watch.
    secret_rules = [
        rule for d in docs if d["kind"] in ("ClusterRole", "Role")
        for rule in d["rules"] if "secrets" in rule["resources"]
    ]  # fmt: skip
    assert secret_rules == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]
    # Nodes: listed (a CPU pool's Node Feature Discovery labels), never watched or written.
    node_rules = [rule for d in docs if d["kind"] == "ClusterRole"
                  for rule in d["rules"] if "nodes" in rule["resources"]]  # fmt: skip
    assert node_rules == [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}]
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 1
    pod = operator_pod(docs)
    # What the restricted Pod Security Standard requires, and a fixed non-root identity.
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "runAsGroup": 1000,
        "fsGroup": 1000,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    # The read-only root filesystem: /tmp is an emptyDir.
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert pod["volumes"] == [{"name": "tmp", "emptyDir": {}}]
    # The image's ENTRYPOINT (bodypose-operator) runs; the chart passes only arguments.
    assert "command" not in container
    assert container["args"] == [
        "--liveness=http://0.0.0.0:8080/healthz",
        "--metrics-port=9090",
    ]
    # No S3 account of its own: each resource's Secret is used for that resource.
    assert "envFrom" not in container
    assert not [e for e in container["env"] if "valueFrom" in e]
    assert env_of(container)["BODYPOSE_AMBIENT_S3_CREDENTIALS"] == "false"
    ambient = operator_pod(rendered(
        helm, "--set", "s3.ambientCredentials=true", "--set", "s3.ambientCredentialsSecret=op-s3"
    ))["containers"][0]  # fmt: skip
    # The ambient Secret's S3 keys, each by name, never the whole Secret.
    assert "envFrom" not in ambient
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in ambient["env"] if "valueFrom" in e}
    required = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    optional = ("AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION",
                "AWS_DEFAULT_REGION")  # fmt: skip
    assert refs == {k: {"name": "op-s3", "key": k, "optional": k in optional}
                    for k in (*required, *optional)}  # fmt: skip
    assert env_of(ambient)["BODYPOSE_AMBIENT_S3_CREDENTIALS"] == "true"
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert "imagePullSecrets" not in pod


def test_template_names_the_three_images_with_the_app_version(helm: Path) -> None:
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    (container,) = operator_pod(rendered(helm))["containers"]
    assert container["image"] == f"bodypose-export/operator:{app_version}"
    assert container["imagePullPolicy"] == "IfNotPresent"
    env = env_of(container)
    assert env["BODYPOSE_EXPORTER_IMAGE"] == f"bodypose-export/exporter:{app_version}"
    assert env["BODYPOSE_EXPORTER_GPU_IMAGE"] == f"bodypose-export/exporter-gpu:{app_version}"
    assert env["BODYPOSE_EXPORT_IMAGE"] == ""  # the operator then uses the exporter image
    assert env["BODYPOSE_IMAGE_PULL_POLICY"] == "IfNotPresent"
    assert env["BODYPOSE_IMAGE_PULL_SECRETS"] == ""


def test_template_with_a_registry_tags_and_pull_secrets(helm: Path) -> None:
    tao = "registry.example.com:5000/ml/bpnet-tao-deploy:5.5.0"
    docs = rendered(
        helm,
        "--set", "imageRegistry=registry.example.com:5000/ml",
        "--set", "image.tag=0.2.0-rc1",
        "--set", "exporterGpu.image.tag=0.2.0-trt10",
        "--set", "exporterGpu.image.pullPolicy=Always",
        "--set", f"exportJobImage={tao}",
        "--set", "imagePullSecrets={regcred,ngc}",
    )  # fmt: skip
    pod = operator_pod(docs)
    (container,) = pod["containers"]
    assert container["image"] == "registry.example.com:5000/ml/bodypose-export/operator:0.2.0-rc1"
    assert pod["imagePullSecrets"] == [{"name": "regcred"}, {"name": "ngc"}]
    env = env_of(container)
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    assert env["BODYPOSE_EXPORTER_IMAGE"] == (
        f"registry.example.com:5000/ml/bodypose-export/exporter:{app_version}"
    )
    assert env["BODYPOSE_EXPORTER_GPU_IMAGE"] == (
        "registry.example.com:5000/ml/bodypose-export/exporter-gpu:0.2.0-trt10"
    )
    assert env["BODYPOSE_EXPORTER_GPU_IMAGE_PULL_POLICY"] == "Always"
    assert env["BODYPOSE_EXPORT_IMAGE"] == tao  # a full reference, used as is
    assert env["BODYPOSE_IMAGE_PULL_SECRETS"] == "regcred,ngc"


def test_template_ports_and_pod_labels(helm: Path) -> None:
    docs = rendered(
        helm,
        "--set", "health.port=8081",
        "--set", "metrics.port=9191",
        "--set", "podLabels.team=vision",
        "--set", "podLabels.app\\.kubernetes\\.io/name=not-the-selector",
    )  # fmt: skip
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["team"] == "vision"
    assert labels["app.kubernetes.io/name"] == "bodypose-operator"  # the selector wins
    (container,) = operator_pod(docs)["containers"]
    assert container["args"][:2] == [
        "--liveness=http://0.0.0.0:8081/healthz",
        "--metrics-port=9191",
    ]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {
        "health": 8081,
        "metrics": 9191,
    }
    service = next(d for d in docs if d["kind"] == "Service")
    assert service["spec"]["ports"][0]["port"] == 9191


def test_health_and_metrics_ports_must_differ(helm: Path) -> None:
    done = helm_run(helm, "template", "demo", str(CHART), "--set", "metrics.port=8080")
    assert done.returncode != 0
    assert "metrics.port and health.port must differ" in done.stderr


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("jobs.backoffLimit=-1", "at '/jobs/backoffLimit': minimum: got -1, want 0"),
        ("image.pullPolicy=Sometimes", "at '/image/pullPolicy': value must be one of"),
        ("replicas=0", "at '/replicas': minimum: got 0, want 1"),
        ("exporterImage=x", "additional properties 'exporterImage' not allowed"),
        ("jobs.latencyBudgetSeconds=0", "'/jobs/latencyBudgetSeconds': exclusiveMinimum: got 0"),
        ("jobs.latencyBudgetSeconds=soon", "'/jobs/latencyBudgetSeconds': got string, want number"),
    ],
)
def test_bad_values_are_refused_by_the_schema(helm: Path, flag: str, message: str) -> None:
    done = helm_run(helm, "template", "demo", str(CHART), "--set", flag)
    assert done.returncode != 0
    assert "values don't meet the specifications of the schema" in done.stderr
    assert message in done.stderr


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("imageRegistry", "https://registry.example.com"),  # a registry, not a URL
        ("exporterGpu.image.repository", "Bodypose/GPU"),
        ("exporter.image.tag", "0.1.0 rc"),
        ("exportJobImage", "nvcr.io/nvidia/tao/tao-toolkit:"),
        ("imagePullSecrets[0]", "Reg_Cred"),
    ],
)
def test_malformed_image_values_are_refused_by_the_schema(helm: Path, key: str, value: str) -> None:
    done = helm_run(helm, "template", "demo", str(CHART), "--set", f"{key}={value}")
    assert done.returncode != 0
    pointer = "/" + key.replace(".", "/").replace("[0]", "/0")
    assert f"at '{pointer}': '{value}' does not match pattern" in done.stderr


def test_watched_namespaces_grant_everything_only_there_but_nodes(helm: Path) -> None:
    docs = rendered(helm, "--set", "watchNamespaces={team-a,team-b}")
    roles = [d for d in docs if d["kind"] == "Role"]
    secrets = [r for r in roles if r["metadata"]["name"] == "bodypose-operator-demo-secrets"]
    assert sorted(r["metadata"]["namespace"] for r in secrets) == ["team-a", "team-b"]
    assert all(r["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]
               for r in secrets)  # fmt: skip
    main = [r for r in roles if r["metadata"]["name"] == "bodypose-operator-demo"]
    assert sorted(r["metadata"]["namespace"] for r in main) == ["team-a", "team-b"]
    assert all({"apiGroups": ["batch"], "resources": ["jobs"],
                "verbs": ["list", "watch", "create", "delete"]} in r["rules"]
               for r in main)  # fmt: skip
    # Cluster-wide: nodes list only (nodes are cluster-scoped), bound to the operator.
    cluster_roles = [d for d in docs if d["kind"] == "ClusterRole"]
    assert [d["rules"] for d in cluster_roles] == [
        [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}]
    ]


def test_install_creates_the_crd_and_an_operator_that_gets_but_never_lists_secrets(
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
        status = ("bodyposeexports.bodypose.dev", "--subresource=status", "-n", namespace)
        assert can("patch", *status) == "yes" and can("update", *status) == "no"
        assert can("create", "jobs.batch", "-n", namespace) == "yes"
        assert can("delete", "jobs.batch", "-n", namespace) == "yes"
        assert can("create", "events", "-n", namespace) == "yes"
        assert can("get", "secrets", "-n", namespace) == "yes"
        assert can("list", "secrets", "-n", namespace) == "no"
        assert can("watch", "secrets", "-n", namespace) == "no"
        assert can("create", "pods", "-n", namespace) == "no"
        assert can("list", "nodes") == "yes"
        assert can("watch", "nodes") == "no" and can("patch", "nodes") == "no"
        assert can("list", "namespaces") == "no"
        assert can("patch", "jobs.batch", "-n", namespace) == "no"
    finally:
        helm_run(
            helm, "uninstall", "bpe-test", "--namespace", namespace, kubeconfig=cluster.kubeconfig
        )


def test_more_replicas_use_kopf_peering(helm: Path) -> None:
    one = rendered(helm)
    assert "BODYPOSE_PEERING" not in env_of(operator_pod(one)["containers"][0])
    assert not [d for d in one if d["kind"] in ("ClusterKopfPeering", "KopfPeering")]
    two = rendered(helm, "--set", "replicas=2")
    assert env_of(operator_pod(two)["containers"][0])["BODYPOSE_PEERING"] == (
        "bodypose-operator-demo"
    )
    (peering,) = [d for d in two if d["kind"] == "ClusterKopfPeering"]
    assert peering["metadata"]["name"] == "bodypose-operator-demo"
    namespaced = rendered(helm, "--set", "replicas=2", "--set", "watchNamespaces={a,b}")
    assert sorted(d["metadata"]["namespace"] for d in namespaced if d["kind"] == "KopfPeering") == [
        "a",
        "b",
    ]
    peering_rule = {"apiGroups": ["kopf.dev"], "resources": ["clusterkopfpeerings"],
                    "verbs": ["list", "watch", "patch"]}  # fmt: skip
    assert peering_rule in role_named(two, "ClusterRole", "bodypose-operator-demo")["rules"]
    assert all(peering_rule not in d["rules"] for d in one if d["kind"] == "ClusterRole")
    # Watching listed namespaces: the KopfPeering there, by a Role there.
    roles = [d for d in namespaced if d["kind"] == "Role"
             and d["metadata"]["name"] == "bodypose-operator-demo"]  # fmt: skip
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["a", "b"]
    assert all({"apiGroups": ["kopf.dev"], "resources": ["kopfpeerings"],
                "verbs": ["list", "watch", "patch"]} in r["rules"] for r in roles)  # fmt: skip


WORKLOADS_READ = {
    "apiGroups": ["kueue.x-k8s.io"],
    "resources": ["workloads"],
    "verbs": ["list", "watch"],
}
#: With queueing on, a Workload's event names its Job, which the operator then gets.
JOB_GET = {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get"]}


def kueue_rules(docs: list[dict[str, Any]]) -> list[tuple[str, str | None, dict[str, Any]]]:
    """(kind, namespace, rule) of every rule that names anything of Kueue's."""
    return [
        (d["kind"], d["metadata"].get("namespace"), rule)
        for d in docs if d["kind"] in ("ClusterRole", "Role")
        for rule in d["rules"] if "kueue.x-k8s.io" in rule["apiGroups"]
    ]  # fmt: skip


def test_queueing_grants_workload_read_only_where_it_watches(helm: Path) -> None:
    off = rendered(helm)
    assert kueue_rules(off) == []
    env = env_of(operator_pod(off)["containers"][0])
    assert (env["BODYPOSE_KUEUE"], env["BODYPOSE_QUEUE_NAME"]) == ("false", "")

    # kueue.enabled, two watched namespaces: a Role in each, read on Workloads, nothing more.
    namespaced = rendered(helm, "--set", "kueue.enabled=true", "--set", "watchNamespaces={a,b}")
    assert kueue_rules(namespaced) == [("Role", "a", WORKLOADS_READ), ("Role", "b", WORKLOADS_READ)]
    kueue_roles = [d for d in namespaced if d["metadata"]["name"] == "bodypose-operator-demo-kueue"
                   and d["kind"] == "Role"]  # fmt: skip
    assert all(r["rules"] == [WORKLOADS_READ, JOB_GET] for r in kueue_roles)
    assert not any(JOB_GET in d["rules"] for d in off if d["kind"] in ("Role", "ClusterRole"))
    bindings = [d for d in namespaced if d["kind"] == "RoleBinding"
                and d["roleRef"]["name"] == "bodypose-operator-demo-kueue"]  # fmt: skip
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["a", "b"]
    assert all(b["subjects"] == [{"kind": "ServiceAccount", "name": "bodypose-operator",
                                  "namespace": "ops"}] for b in bindings)  # fmt: skip
    assert env_of(operator_pod(namespaced)["containers"][0])["BODYPOSE_KUEUE"] == "true"

    # A default queue turns queueing on by itself; watching every namespace: a ClusterRole.
    default = rendered(helm, "--set", "jobs.queueName=gpus")
    assert kueue_rules(default) == [("ClusterRole", None, WORKLOADS_READ)]
    env = env_of(operator_pod(default)["containers"][0])
    assert (env["BODYPOSE_KUEUE"], env["BODYPOSE_QUEUE_NAME"]) == ("true", "gpus")


@pytest.mark.parametrize("value", ["GPUs", "gpus_a100", "-gpus", "q" * 64])
def test_a_default_queue_kueue_would_refuse_is_refused_by_the_schema(
    helm: Path, value: str
) -> None:
    done = helm_run(helm, "template", "demo", str(CHART), "--set", f"jobs.queueName={value}")
    assert done.returncode != 0
    assert "values don't meet the specifications of the schema" in done.stderr
    assert "at '/jobs/queueName'" in done.stderr
