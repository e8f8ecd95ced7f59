# bodypose-export: `make demo` runs the main job, `make test` runs every test.
# Both create the Python environment first if it is missing or stale.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_DIR ?= demo-output
DEMO_KEY ?= nvidia_tlt
PYTEST_ARGS ?=

.PHONY: env demo demo-export test lint typecheck unit crds clean help

help:
	@echo "make demo   - the whole flow locally: control plane, MinIO, operator, an int8 BodyPoseExport"
	@echo "make demo-export - the exporter alone: sample model -> .etlt, cal.bin, int8 engine"
	@echo "make test   - lint, type-check and run the whole test suite"
	@echo "make env    - create/refresh the Python environment in $(VENV)"
	@echo "make cluster-up / cluster-down - a local control plane with fake GPU pools (.cluster/)"

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e '.[exporter,operator,dev]'
	touch $@

env: $(VENV)/.installed

# The whole flow: local control plane with GPU pools, MinIO, the operator, an
# int8 BodyPoseExport (examples/), Ready, then `kubectl get bpe` and the artifacts.
demo: env cluster-binaries
	$(PY) -m devcluster.demo --state-dir $(DEMO_DIR)

# The exporter alone, no cluster: a sample model exported at 320x448, int8.
demo-export: env
	$(VENV)/bin/bpnet-sample -o $(DEMO_DIR)/export -k $(DEMO_KEY) --images 24
	$(VENV)/bin/bpnet-export -m $(DEMO_DIR)/export/bpnet_sample.tlt -k $(DEMO_KEY) \
		-d 320,448,3 -o $(DEMO_DIR)/export/bpnet_model.etlt --data_type int8 \
		--cal_image_dir $(DEMO_DIR)/export/images --batches 4 --batch_size 2 \
		--cal_cache_file $(DEMO_DIR)/export/cal.bin \
		--engine_file $(DEMO_DIR)/export/ --engine_backend onnxruntime

lint: env
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: env
	$(VENV)/bin/mypy exporter_image/bodypose_exporter operator/bodypose_operator devcluster

unit: env cluster-binaries
	$(VENV)/bin/pytest $(PYTEST_ARGS)

test: lint typecheck unit

crds: env
	$(PY) -m bodypose_operator.api.crd > crds/bodyposeexports.bodypose.dev.yaml
	cp crds/bodyposeexports.bodypose.dev.yaml charts/bodypose-operator/crds/

clean:
	rm -rf $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache

# cluster-binaries, cluster-up, cluster-status, cluster-down (after `help`: not the default goal)
include hack/cluster/cluster.mk
