# Two commands for a fresh machine with Python >= 3.11, git and make:
#   make demo   run the incident playbook against the built-in sandbox
#   make test   install everything from the lock and run lint, types, workflow checks and tests
PYTHON ?= python3
VENV := .venv
TOOLS := .tools
UV := $(TOOLS)/bin/uv
# uv installs into .venv, only the versions and hashes pinned in uv.lock.
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)
export UV_PYTHON := $(shell command -v $(PYTHON))
export UV_PYTHON_DOWNLOADS := never

.PHONY: all install demo demo-actions test lint typecheck imports workflows incidents-lint wrangler lock-check test-fast bench clean

all: test

# Bootstrap uv itself from PyPI, hash-checked, into a private tools venv.
$(UV): requirements/bootstrap.txt
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements/bootstrap.txt
	touch $(UV)

$(VENV)/.installed: $(UV) uv.lock pyproject.toml
	$(UV) sync --locked --all-extras --quiet
	touch $@

install: $(VENV)/.installed

# The lock matches pyproject.toml, and the check still bites: a drifted copy must be refused. Resolving the
# drifted copy needs PyPI's metadata, which a fresh machine only has online, so the proof runs here, not in pytest.
lock-check: $(UV)
	$(UV) lock --check
	$(TOOLS)/bin/python scripts/check_lock_drift.py $(UV)

demo: install
	$(VENV)/bin/incidentops demo

# The same story through the real workflow files under act, offline (needs root for a network namespace).
demo-actions: install
	$(VENV)/bin/incidentops demo --via-actions

lint: install
	$(VENV)/bin/ruff check scripts tests benchmarks
	$(VENV)/bin/ruff format --check scripts tests benchmarks

typecheck: install
	$(VENV)/bin/mypy

# The layering contracts in pyproject.toml ([tool.importlinter]): pure core, flows layered under dispatch.
imports: install
	$(VENV)/bin/lint-imports

workflows: install
	$(VENV)/bin/zizmor --offline .github/workflows
	$(VENV)/bin/zizmor --offline --persona auditor .github/workflows

# The real wrangler CLI (and the Node it needs), from the npm lock, for the wrangler compatibility test.
WRANGLER_DIR := tests/e2e_wrangler
$(WRANGLER_DIR)/node_modules/.installed: $(WRANGLER_DIR)/package-lock.json
	cd $(WRANGLER_DIR) && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $@

wrangler: $(WRANGLER_DIR)/node_modules/.installed

# The repository's own incident files must pass the same lint the pull-request workflow runs.
incidents-lint: install
	$(VENV)/bin/incidentops lint

# pytest-xdist workers: most tests wait on subprocesses (act, wrangler, git, the CLI) or on the sandbox's latency,
# so 4 workers keep 2 cores busy. Tests sharing a module-scoped set-up stay on one worker, and the long ones start
# first (tests/conftest.py); `--no-loadscope-reorder` keeps that order. The suite starts hundreds of Python
# processes (the CLI, act's steps, the sandbox): with PYTHONDONTWRITEBYTECODE set, each one would compile PyGithub
# and the package from source again (about 3 s of CPU each), so the tests run with Python's default bytecode cache.
TEST_WORKERS ?= 4

test: lock-check install lint typecheck imports workflows incidents-lint wrangler
	env -u PYTHONDONTWRITEBYTECODE $(VENV)/bin/pytest -q -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder

test-fast: install
	$(VENV)/bin/pytest -q -m "not slow and not act and not wrangler"

# Every benchmark, one after another, then one table of figure, target and verdict (docs/performance.md); exits
# non-zero only after all ran. The rollback benchmark times the real wrangler too.
bench: install wrangler
	$(VENV)/bin/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache
