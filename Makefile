# Two commands for a newcomer: `make demo` and `make test`. Both set up what they need first.
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.minga-installed
DEMO_DIR ?= demo-data

.PHONY: setup demo test lint typecheck imports pytest clean

setup: $(STAMP)

$(STAMP): pyproject.toml deploy/bootstrap.sh
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

clean:
	rm -rf $(VENV) $(DEMO_DIR) .mypy_cache .pytest_cache .ruff_cache .hypothesis tests/artifacts
