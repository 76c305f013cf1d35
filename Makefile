# Two commands matter: `make demo` (the main job) and `make test` (the test suite).
# The virtual environment lives outside the clone, keyed on constraints.txt (every dependency
# is pinned there: add a dependency to pyproject.toml AND constraints.txt), so a fresh
# clone reuses it instead of reinstalling ~5 GB of PyTorch.
PYTHON ?= python3
LOCK_HASH := $(shell sha256sum constraints.txt | cut -c1-12)
VENV ?= $(HOME)/.cache/wzcodec/venv-$(LOCK_HASH)
BIN := $(VENV)/bin

.PHONY: venv install demo test test-slow lint clean

# No file prerequisites: the path itself is keyed on the lock's hash (a fresh clone's
# timestamps must not trigger a reinstall).
$(VENV)/.deps-ok:
	@echo "creating $(VENV): PyTorch and the codecs, about 5 minutes the first time"
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -c constraints.txt -e ".[dev]"
	touch $@

venv: $(VENV)/.deps-ok

# Re-point the (cached) venv at this checkout: fast, no downloads.
install: venv
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .

demo: install
	@echo "wz demo: the bundled pairs as plain AVIF / HEIC and refined with y (about a minute)"
	$(BIN)/python -m wzcodec demo --out demo-out

test: install
	$(BIN)/ruff check src tests benchmarks fuzz scripts experiments
	$(BIN)/ruff format --check src tests benchmarks fuzz scripts experiments
	$(BIN)/python -m pytest -q

test-slow: install
	$(BIN)/python -m pytest -q -m slow

lint: install
	$(BIN)/ruff check src tests benchmarks fuzz scripts experiments
	$(BIN)/ruff format --check src tests benchmarks fuzz scripts experiments

clean:
	rm -rf demo-out build dist .pytest_cache
