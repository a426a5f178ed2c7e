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

.PHONY: venv test test-fast demo bench bench-reference lint clean

venv: $(STAMP)

# torch first (the CPU wheel), then everything else under the same constraints so no resolver picks another torch.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q -U pip
	$(BIN)/python -m pip install -q -c constraints.txt torch==2.13.0
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[data,dev]"
	touch $(STAMP)

test: venv
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-fast: venv
	$(BIN)/python -m pytest -q -m "not integration and not slow" $(PYTEST_ARGS)

demo: venv
	$(BIN)/lwdock demo

bench: venv
	$(BIN)/python -m benchmarks.run --full $(BENCH_ARGS)

bench-reference: venv
	bash benchmarks/reference/setup_env.sh
	$(BIN)/python -m benchmarks.run --reference $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
