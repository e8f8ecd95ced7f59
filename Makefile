# bodypose-export: `make demo` runs the main job, `make test` runs every test.
# Both create the Python environment first if it is missing or stale.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_DIR ?= demo-output
DEMO_KEY ?= nvidia_tlt
PYTEST_ARGS ?=

.PHONY: soak sample-weights bench-resolutions tools bench bench-operator bench-fanout bench-accuracy bench-calibration bench-engines env demo demo-export test lint typecheck unit crds clean help images lock

help:
	@echo "make demo   - the whole flow locally: control plane, MinIO, the operator in its image, two BodyPoseExports"
	@echo "              (int8 on three pools; fp16 with a TensorRT-RTX engine for l4) to Ready"
	@echo "make demo-export - the exporter alone: sample model -> .etlt, cal.bin, int8 engine"
	@echo "make test   - lint, type-check and run the whole test suite"
	@echo "make env    - create/refresh the Python environment in $(VENV)"
	@echo "make soak   - the convergence campaign: STEPS=200 seeded edits and faults (SEED=...)"
	@echo "make bench  - every benchmark (bench-operator, -fanout, -accuracy, -calibration, -engines, -resolutions)"
	@echo "make bench-resolutions - TAO's resolution table on this CPU: latency and AP per size and precision"
	@echo "             AS_CPU=x86-avx2|x86-avx512: bench-engines/-accuracy/-resolutions as on x86 without VNNI"
	@echo "make images - build the operator and exporter images (buildah; cached by content)"
	@echo "make sample-weights - retrain the trained sample and write its committed weights"
	@echo "make lock   - regenerate requirements/*.lock (uv pip compile --universal, hashes)"
	@echo "make cluster-up / cluster-down - a local control plane with fake GPU pools (.cluster/)"

# The development environment runs what the images run: every version from
# requirements/dev.lock, which `make lock` resolves under the images' locks.
$(VENV)/.installed: pyproject.toml requirements/dev.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes --no-deps -r requirements/dev.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

env: $(VENV)/.installed

# The whole flow: local control plane with GPU pools, MinIO, the operator, an
# int8 BodyPoseExport (examples/), Ready, then `kubectl get bpe` and the artifacts.
demo: env cluster-binaries images
	$(PY) -m devcluster.demo --state-dir $(DEMO_DIR)

# The exporter alone, no cluster: a sample model exported at 320x448, int8.
demo-export: env
	$(VENV)/bin/bpnet-sample -o $(DEMO_DIR)/export -k $(DEMO_KEY) --images 24
	$(VENV)/bin/bpnet-export -m $(DEMO_DIR)/export/bpnet_sample.tlt -k $(DEMO_KEY) \
		-d 320,448,3 -o $(DEMO_DIR)/export/bpnet_model.etlt --data_type int8 \
		--cal_image_dir $(DEMO_DIR)/export/images --batches 4 --batch_size 2 \
		--cal_cache_file $(DEMO_DIR)/export/cal.bin \
		--engine_file $(DEMO_DIR)/export/ --engine_backend onnxruntime

# The trained sample's weights, committed under exporter_image/bodypose_exporter/synthetic/
# trained/: remade (a few minutes of training on two cores) after a change to the drawing,
# labelling, network or training code; a test says when they are stale.
sample-weights: env
	$(PY) -m bodypose_exporter.synthetic.cache

lint: env
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

typecheck: env
	$(VENV)/bin/mypy exporter_image/bodypose_exporter operator/bodypose_operator devcluster bodypose_contract

# Two pytest sessions side by side, tests/e2e and the rest (tests/support/run_suite.py
# says why); PYTEST_ARGS=... runs one session of exactly that. Kueue's manager is built
# here too (KUEUE, for cluster-binaries): built cold inside tests/cluster/test_kueue.py
# it took 318 s of that test, and the e2e session's Kueue tests waited on its lock.
unit: KUEUE := 1
unit: tools env cluster-binaries images
	$(PY) -m tests.support.run_suite $(PYTEST_ARGS)

test: lint typecheck unit

# The long convergence campaign (tests/support/convergence.py): STEPS seeded spec edits
# and faults on a local cluster of its own, the invariant after each; prints every
# divergence with its seed and step, and one summary line. SEED defaults to the date.
STEPS ?= 200
SEED ?= $(shell date +%Y%m%d)
soak: env cluster-binaries images
	$(PY) -m tests.support.convergence --steps $(STEPS) --seed $(SEED)

# The operator and exporter images as OCI archives (devcluster/images/): buildah,
# a Debian base from mmdebstrap, nothing rebuilt while its inputs are unchanged.
images: env
	$(PY) -m devcluster.images build

# The images' pinned, hashed dependencies, one lock for Debian's Python 3.11 and
# the TensorRT container's 3.12 alike (--universal).
UV_LOCK_FLAGS = --generate-hashes --universal --python-version 3.11
lock: env
	$(VENV)/bin/uv pip compile pyproject.toml requirements/build.in --extra operator \
		$(UV_LOCK_FLAGS) -o requirements/operator.lock
	$(VENV)/bin/uv pip compile pyproject.toml requirements/build.in --extra exporter \
		$(UV_LOCK_FLAGS) -o requirements/exporter.lock
	$(VENV)/bin/uv pip compile requirements/gpu.in -c requirements/exporter.lock \
		$(UV_LOCK_FLAGS) -o requirements/gpu.lock
	$(VENV)/bin/uv pip compile pyproject.toml requirements/build.in --extra exporter \
		--extra operator --extra dev -c requirements/exporter.lock -c requirements/operator.lock \
		$(UV_LOCK_FLAGS) -o requirements/dev.lock

# AS_CPU=x86-avx2 or x86-avx512: bench-engines, -accuracy and -resolutions run as on x86
# without VNNI (hack/cpumask/run: ONNX Runtime's kernels for that class, on this CPU).
CPUMASK = $(if $(AS_CPU),hack/cpumask/run $(AS_CPU) --)

# The operator at scale on the local control plane, no pod executed: 100, 300 and 500
# resources x 3 targets, event-driven against the old 10 s timer (benchmarks/operator_scale.py).
bench-operator: env cluster-binaries
	PYTHONPATH=. $(PY) benchmarks/operator_scale.py

# One shared export and calibration with parallel builds, against each target doing it all,
# pods run from the images (benchmarks/fanout.py): 1, 3 and 6 targets.
bench-fanout: env cluster-binaries images
	PYTHONPATH=. $(PY) benchmarks/fanout.py

# OKS keypoint AP of the trained sample per precision (fp32, fp16, int8, ONNX Runtime) and
# each one's drop against FP32, beside two engines the AP gate must refuse (benchmarks/accuracy.py).
bench-accuracy: env
	PYTHONPATH=. $(CPUMASK) $(PY) benchmarks/accuracy.py

# Our streaming INT8 calibration against pure forward passes and ONNX Runtime's own
# calibrator, time and peak memory at N=16 and 500 images (benchmarks/calibration.py).
bench-calibration: env
	PYTHONPATH=. $(PY) benchmarks/calibration.py

# FP32 against int8 latency of the ONNX Runtime artifacts the build stage makes, at the
# three input sizes (benchmarks/engines.py).
bench-engines: env
	PYTHONPATH=. $(CPUMASK) $(PY) benchmarks/engines.py

# TAO's resolution table for this machine's CPU pool: the trained sample at 224x320, 288x384
# and 320x448, fp32 and int8, latency and AP per cell beside TAO's RTX 2080 and Jetson AGX rows
# as ratios to 224x320, and the plot (benchmarks/resolutions.py).
bench-resolutions: env
	PYTHONPATH=. $(CPUMASK) $(PY) benchmarks/resolutions.py --plot $(DEMO_DIR)/resolutions

# Every benchmark, one after another (about 30 minutes on two cores).
bench: bench-operator bench-fanout bench-accuracy bench-calibration bench-engines bench-resolutions

# Debian tools the tests run for real: a Lua interpreter for the chart's Argo CD health
# check (the images' buildah, mmdebstrap, umoci and skopeo are installed by `make images`).
tools:
	@command -v lua5.4 >/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq lua5.4 >/dev/null; }

crds: env
	$(PY) -m bodypose_operator.api.crd > crds/bodyposeexports.bodypose.dev.yaml
	cp crds/bodyposeexports.bodypose.dev.yaml charts/bodypose-operator/crds/

clean:
	rm -rf $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache

# cluster-binaries, cluster-up, cluster-status, cluster-down (after `help`: not the default goal)
include hack/cluster/cluster.mk
