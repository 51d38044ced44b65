# make serve  — fresh clone → .venv, build, serve the bundled example site
# make test   — fresh clone → .venv, build, the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.deps-stamp
CSRC   := $(wildcard src/c/*.c src/c/*.h) src/pyfront/_build/ffi_build.py
EXT    := src/pyfront/.build-stamp

.PHONY: serve test build asan test-asan test-installed bench clean check-fresh

serve: $(EXT)
	$(VENV)/bin/pyfront serve

test: $(EXT)
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

build: $(EXT)

$(STAMP): requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

# Editable install (src/ on the path) + the extension built in place.
$(EXT): $(STAMP) $(CSRC)
	$(PY) -m pip install -q --no-build-isolation --no-deps -e .
	$(PY) setup.py -q build_ext --inplace
	touch $@

# The C core under AddressSanitizer + UBSan, and the C-facing tests run against it.
ASAN_LIB = $(shell gcc -print-file-name=libasan.so)
asan: $(STAMP)
	rm -rf build/asan && PYFRONT_SANITIZE=1 $(PY) setup.py -q build_ext --build-temp build/asan/tmp --build-lib build/asan/lib
test-asan: asan
	PYFRONT_NATIVE_PATH=build/asan/lib LD_PRELOAD=$(ASAN_LIB) ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	$(PY) -m pytest -q -p no:cacheprovider --capture=sys -m "not peer" tests/c tests/property $(PYTEST_ARGS)

# The packaging check (issue 6): an sdist, a wheel built FROM that sdist, installed into a
# fresh venv, and the integration tests run against the installed copy (not src/).
INST := build/installed
test-installed: $(STAMP)
	rm -rf $(INST) && mkdir -p $(INST)
	$(PY) setup.py -q sdist -d $(INST)/sdist
	$(PY) -m pip wheel -q --no-deps --no-build-isolation -w $(INST)/wheel $(INST)/sdist/pyfront-*.tar.gz
	$(PYTHON) -m venv $(INST)/venv
	$(INST)/venv/bin/python -m pip install -q -r requirements-dev.txt $(INST)/wheel/pyfront-*.whl
	PYFRONT_TEST_INSTALLED=1 $(INST)/venv/bin/python -m pytest -q -p no:cacheprovider tests/integration $(PYTEST_ARGS)

bench: $(EXT)
	$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf build dist src/pyfront/_pf*.so src/pyfront/_pf.c $(EXT) *.egg-info src/*.egg-info
