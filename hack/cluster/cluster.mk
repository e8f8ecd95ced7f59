# The local Kubernetes cluster for people and for the tests (hack/cluster/README.md).
# Included by the top Makefile (`-include hack/cluster/cluster.mk`), which
# defines VENV, PY and the `env` target (the Python environment).
PY ?= .venv/bin/python
CLUSTER_STATE ?= .cluster

.PHONY: cluster-binaries cluster-up cluster-down cluster-status

# Build etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl,
# kwok and helm from their Go modules if not cached (minutes when cold).
cluster-binaries:
	hack/cluster/build.sh

# Start a control plane with GPU pools a100 and t4 and a cpu pool; prints the
# `export KUBECONFIG=...` to use. Its processes keep running until cluster-down.
cluster-up: env cluster-binaries
	$(PY) -m tests.infra.controlplane up --state-dir $(CLUSTER_STATE)

cluster-status: env
	$(PY) -m tests.infra.controlplane status --state-dir $(CLUSTER_STATE)

cluster-down: env
	$(PY) -m tests.infra.controlplane down --state-dir $(CLUSTER_STATE)
