# Every target bootstraps itself: the first run creates .venv and installs the
# project with its extras; later runs reinstall only when pyproject.toml changes.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SOURCES := src tests benchmarks tools

.PHONY: install test browser check lint format bench serve demo mutate clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

test: $(STAMP) browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The dashboard's browser test renders the page with Debian's chromium (headless).
browser:
	tools/ensure_chromium.sh

check: $(STAMP)
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)
	$(BIN)/mypy
	$(BIN)/python tools/check_imports.py

format: $(STAMP)
	$(BIN)/ruff format $(SOURCES)
	$(BIN)/ruff check --fix $(SOURCES)

bench: $(STAMP)
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

# Mutation testing (slow, not in CI; docs/folding.md): one mutmut run per module,
# from scratch, then the figures per module and every surviving mutant.
MUTATE_MODULES := balances.domain.current balances.domain.series balances.ingest.rules
mutate: $(STAMP)
	rm -rf mutants && mkdir mutants
	@start=$$(date +%s); for module in $(MUTATE_MODULES); do \
		began=$$(date +%s); \
		$(BIN)/mutmut run "$$module.*" > mutants/run-$$module.log 2>&1 || { tail -30 mutants/run-$$module.log; exit 1; }; \
		echo "$$module: $$(( $$(date +%s) - began )) s"; \
	done; echo "make mutate: $$(( $$(date +%s) - start )) s in all"
	$(BIN)/python tools/mutation_report.py $(MUTATE_MODULES)

serve: $(STAMP)
	$(BIN)/balances serve $(SERVE_ARGS)

demo: $(STAMP)
	$(BIN)/balances demo $(DEMO_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis mutants
