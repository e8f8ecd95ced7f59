# The local Kubernetes cluster for people and for the tests (hack/cluster/README.md).
# Included by the top Makefile (`-include hack/cluster/cluster.mk`), which
# defines VENV, PY and the `env` target (the Python environment).
PY ?= .venv/bin/python
CLUSTER_STATE ?= .cluster
# What the tests and cluster-up use; MinIO is the S3 endpoint of both.
CLUSTER_COMPONENTS ?= etcd kubernetes kwok helm minio kstatus

.PHONY: cluster-binaries cluster-up cluster-down cluster-status

# Build etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl,
# kwok, helm and MinIO from their Go modules if not cached (about 10 minutes
# cold on 2 cores, nothing when cached). `make test` runs this before pytest so
# that a cold build never counts against a test's timeout.
cluster-binaries:
	hack/cluster/build.sh $(CLUSTER_COMPONENTS) $(if $(KUEUE),kueue)

# Start a control plane with GPU pools a100 and t4 and a cpu pool, the test
# executor and MinIO; writes $(CLUSTER_STATE)/env.sh (KUBECONFIG, PATH with
# kubectl and helm, AWS_* for MinIO) to source. Runs until cluster-down.
# KUEUE=1: Kueue's controller manager too (devcluster/kueue.py).
cluster-up: env cluster-binaries
	$(PY) -m devcluster.controlplane up --state-dir $(CLUSTER_STATE) $(if $(KUEUE),--kueue)

cluster-status: env
	$(PY) -m devcluster.controlplane status --state-dir $(CLUSTER_STATE)

cluster-down: env
	$(PY) -m devcluster.controlplane down --state-dir $(CLUSTER_STATE)
