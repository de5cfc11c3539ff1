# Every target builds the virtual environment it needs; only Python 3.11+ and make are required.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run demo serve loadtest test lint typecheck unit clean constraints chaos order-path screenshots fuzz

USERS ?= 1000
DURATION ?= 60
WORKERS ?= 0

# constraints.txt pins every package to the version CI last tested (`make constraints` renews it)
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,loadtest,plots,postgres]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/brokerage simulate --seconds 30

demo: $(STAMP)
	$(BIN)/brokerage demo

serve: $(STAMP)
	$(BIN)/brokerage serve

# locust against a fresh `brokerage serve` (WORKERS=N: with N front processes); reports in
# loadtest-report/, fails on any failure
loadtest: $(STAMP)
	$(BIN)/python -m loadtest.run --users $(USERS) --seconds $(DURATION) --out loadtest-report \
		--serve-args "--workers $(WORKERS)"

# the crash test at length: a trading child process SIGKILLed at ROUNDS random moments
ROUNDS ?= 20
chaos: $(STAMP)
	CHAOS_ROUNDS=$(ROUNDS) $(BIN)/pytest -q tests/durability -k sigkill

# what one plain order costs, in instructions (valgrind's callgrind: the same from run to run)
order-path: $(STAMP)
	$(BIN)/python -m loadtest.order_path

# schemathesis over every operation on every runtime (make test fuzzes the served one, asyncio)
fuzz: $(STAMP)
	FUZZ_ALL=1 $(BIN)/pytest -q tests/server/test_fuzz.py

# the desk's browser tests, keeping the main screens in docs/desk-*.png
screenshots: $(STAMP)
	DESK_SCREENSHOTS=1 $(BIN)/pytest -q tests/web

test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

# after changing a dependency range in pyproject.toml: install anew, then pin what was installed
constraints:
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,loadtest,plots,postgres]'
	{ echo '# Versions CI tested: written by `make constraints`, used by every make target.'; \
	  $(BIN)/python -m pip freeze --exclude-editable | grep -v '^pip=='; } > constraints.txt
	touch $(STAMP)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis loadtest-report
