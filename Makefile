# Two commands do all set-up on a fresh machine: `make demo` and `make test` (see README.md).
PYTHON ?= python3
PIP := $(PYTHON) -m pip
PYTEST_ARGS ?=
DEMO_ARGS ?=

.PHONY: install deps data demo test clean

# Installs only when something is missing (tools/check_env.py decides; a no-op takes a second).
install:
	@$(PYTHON) tools/check_env.py >/dev/null 2>&1 || $(MAKE) --no-print-directory deps

# torch first (mmcv builds against it); mmcv 2.1.0 with its compiled ops, from a wheel in PIP_FIND_LINKS when one
# is offered, else built from source (about 20 min on 2 cores; pip caches the result). No build isolation:
# under isolation there is no torch and mmcv silently builds without ops.
deps:
	$(PYTHON) tools/check_env.py || true
	$(PIP) install "torch>=2.1,<2.14" "setuptools>=77.0.3,<81" wheel
	MMCV_WITH_OPS=1 $(PIP) install --no-build-isolation "mmcv==2.1.0"
	$(PIP) install --no-build-isolation -e ".[tests]"
	$(PYTHON) tools/check_env.py

data: install
	$(PYTHON) tools/generate_data.py all

demo: data
	$(PYTHON) tools/demo.py $(DEMO_ARGS)

test: install
	$(PYTHON) -m pytest tests $(PYTEST_ARGS)

clean:
	rm -rf work_dirs .pytest_cache .hypothesis
