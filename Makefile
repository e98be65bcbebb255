# Two commands for a newcomer: `make demo` and `make test`. Both set up what they need first.
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.minga-installed
DEMO_DIR ?= demo-data

.PHONY: setup demo test lint typecheck imports pytest fuzz clean lock release

setup: $(STAMP)

$(STAMP): pyproject.toml deploy/bootstrap.sh requirements/dev.lock
	bash deploy/bootstrap.sh $(VENV)
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/minga demo --dir $(DEMO_DIR)

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy schemas federation sync deploy node

# The import contracts of .importlinter (layers, deploy apart, features through their __init__).
imports: $(STAMP)
	$(BIN)/lint-imports

pytest: $(STAMP)
	$(BIN)/pytest

test: lint typecheck imports pytest

# Longer coverage-guided fuzzing of the parsers of what peers and homeservers send
# (make test runs each target for a few thousand inputs); FUZZ_SECONDS per target.
FUZZ_SECONDS ?= 300
fuzz: $(STAMP)
	$(BIN)/python -m tests.fuzz.run all -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1

# The lock files in requirements/ (decision 0027): every version, with hashes, that bootstrap.sh
# installs. `make lock` adds what pyproject.toml gained and keeps every other pin;
# `make lock UPGRADE=1` moves every pin to the newest release its range allows.
# dev.lock is compiled first; the others take their versions from it, so all three agree.
LOCK := $(BIN)/uv pip compile --universal --python-version 3.11 --generate-hashes --quiet \
	--custom-compile-command "make lock" $(if $(UPGRADE),--upgrade)
lock: $(STAMP)
	$(LOCK) pyproject.toml requirements/build.in --extra homeserver --extra dev --extra bench \
		-c requirements/constraints.in -o requirements/dev.lock
	$(LOCK) pyproject.toml --extra homeserver -c requirements/dev.lock -o requirements/homeserver.lock
	$(LOCK) pyproject.toml -c requirements/dev.lock -o requirements/runtime.lock

# What a server installs (docs/deploy.md): the wheel, the lock files of its dependencies and the
# changelog, in dist/.
release: $(STAMP)
	rm -rf dist build
	$(BIN)/pip wheel . --no-deps --no-build-isolation --wheel-dir dist --quiet
	rm -rf build
	cp requirements/runtime.lock requirements/homeserver.lock CHANGELOG.md dist/

clean:
	rm -rf $(VENV) $(DEMO_DIR) dist build .mypy_cache .pytest_cache .ruff_cache .hypothesis tests/artifacts
