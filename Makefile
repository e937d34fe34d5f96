# The two commands of the README: `make run` (execute every notebook offline) and `make test`.
# Both create .venv on first use, installing the pinned versions of constraints.txt and chatkit itself.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
PYTEST_NBVAL := --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg

.PHONY: setup run test lab notebooks clean

setup: $(STAMP)

$(STAMP): requirements.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt -r requirements.txt
	$(BIN)/python -m pip install -q -c constraints.txt -e .
	touch $(STAMP)

# Execute every notebook headless and offline on the embedded model; copies and HTML go to build/.
run: $(STAMP)
	$(BIN)/python scripts/execute_notebooks.py --out build $(NOTEBOOKS)

# Unit tests, then every notebook under nbval (stored outputs compared strictly).
test: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest tests $(NOTEBOOKS) $(PYTEST_NBVAL)

# Re-execute the notebooks in place (authors: after changing a notebook or the embedded model).
notebooks: $(STAMP)
	$(BIN)/python scripts/execute_notebooks.py $(NOTEBOOKS)

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf build
