# unio4: one venv, pinned install, demo, tests, benchmarks.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TEST_WORKERS ?= 2  # pytest processes: the suite is sized for 2 cores

.PHONY: install demo test check lint typecheck pytest bench clean

install: $(STAMP)

$(STAMP): setup.py requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --no-deps -r requirements.lock  # a full freeze: every package pinned
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: install
	$(BIN)/unio4 demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/python scripts/isaacgym_stubs.py
	$(BIN)/mypy

pytest: install
	sh scripts/ensure-system-deps.sh
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist worksteal --durations=15  # longest tests first (docs/testing.md)

check: lint typecheck  # the quick gate before a commit: lint, format, types (no tests)

# Types are checked beside the tests: mypy's one core fills the time the test workers wait on
# real-time runs (the robot runtime, the emulator) instead of adding its own.
test: lint
	$(MAKE) -j2 typecheck pytest

bench: install
	$(BIN)/unio4 sim bench --backend mujoco --num-envs 256

clean:
	rm -rf $(VENV) runs .mypy_cache .ruff_cache .pytest_cache
