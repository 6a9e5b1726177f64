# Two entry points for a fresh machine: `make demo` (the main job) and `make test` (the test suite).
# Both create or reuse .venv at the repository root. torch is pinned to the CPU build first so that no
# requirement can pull a CUDA build onto a CPU machine; on a GPU node set TORCH_SPEC to what the node needs.
VENV       ?= .venv
PY         := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=
# pytest-xdist workers: most tests wait on processes they start (Ray, engines, ranks) and leave a core idle;
# two keep both of the CI machine's cores busy (tests/conftest.py says which tests share a worker). The
# judge's tests measure time limits against wall clocks: they run afterwards, alone on the machine.
# (Exit status 5, "no tests selected", is no failure of either pass.)
TEST_WORKERS ?= 2
PARALLEL   := $(PY) -m pytest -q -n $(TEST_WORKERS) --ignore=tests/judge
ALONE      := $(PY) -m pytest -q tests/judge
OK_OR_NONE := s=$$?; [ $$s -eq 0 ] || [ $$s -eq 5 ]

.PHONY: venv demo test test-fast clean-venv

venv: $(VENV)/.installed

$(VENV)/.installed: setup.py
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[test]"
	touch $@

demo: venv
	$(VENV)/bin/mc-train --config examples/configs/tiny_cpu.yaml --resume auto

# SGLang's own request classes and server arguments, to check ours against (tests skip without them).
# --no-deps: sglang pins a CUDA torch. Best effort: a failed install only makes those tests skip.
SGLANG_SCHEMA_PKGS := sglang==0.5.23 pybase64 msgspec pyzmq ipython traitlets triton

$(VENV)/.sglang-schemas: | $(VENV)/.installed
	-$(PY) -m pip install -q --no-deps $(SGLANG_SCHEMA_PKGS) && touch $@

test: venv $(VENV)/.sglang-schemas
	$(PARALLEL) $(PYTEST_ARGS); $(OK_OR_NONE)
	$(ALONE) $(PYTEST_ARGS); $(OK_OR_NONE)

test-fast: venv
	$(PARALLEL) -m "not slow" $(PYTEST_ARGS); $(OK_OR_NONE)
	$(ALONE) -m "not slow" $(PYTEST_ARGS); $(OK_OR_NONE)

clean-venv:
	rm -rf $(VENV)
