# bodypose-export: `make demo` runs the main job, `make test` runs every test.
# Both create the Python environment first if it is missing or stale.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_DIR ?= demo-output
DEMO_KEY ?= nvidia_tlt
PYTEST_ARGS ?=

.PHONY: env demo test lint typecheck unit crds clean help

help:
	@echo "make demo   - make the sample model and export it at 320x448 (writes $(DEMO_DIR)/)"
	@echo "make test   - lint, type-check and run the whole test suite"
	@echo "make env    - create/refresh the Python environment in $(VENV)"
	@echo "make cluster-up / cluster-down - a local control plane with fake GPU pools (.cluster/)"

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e '.[exporter,operator,dev]'
	touch $@

env: $(VENV)/.installed

demo: env
	$(VENV)/bin/bpnet-sample -o $(DEMO_DIR) -k $(DEMO_KEY) --images 8
	$(VENV)/bin/bpnet-export -m $(DEMO_DIR)/bpnet_sample.tlt -k $(DEMO_KEY) \
		-d 320,448,3 -o $(DEMO_DIR)/bpnet_model.etlt
	@echo
	@echo "The export wrote:"
	@ls -l $(DEMO_DIR)/bpnet_model.etlt $(DEMO_DIR)/bpnet_model.onnx $(DEMO_DIR)/manifest.json
	@$(PY) -c "import json,sys; m=json.load(open('$(DEMO_DIR)/manifest.json')); \
		print('tensors:', m['tensors']['input']['name'], '->', ', '.join(o['name'] for o in m['tensors']['outputs'])); \
		print('fidelity: max |ONNX Runtime - Keras| =', '%.3g' % m['fidelity']['worst'])"

lint: env
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: env
	$(VENV)/bin/mypy exporter_image/bodypose_exporter operator/bodypose_operator

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
