# gr-specdiff: two commands do everything.
#   make demo   set up (idempotent), then run the main job (specdiff sense) on an embedded scene
#   make test   set up (idempotent), then lint + the whole test suite (pytest and ctest)
# Set-up = Debian packages when missing, a venv in .venv from /usr/bin/python3 with
# --system-site-packages (GNU Radio lives in the system Python), pinned Python packages,
# the package installed in editable mode, and the CMake build in build/.

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMPS := .stamps
APT_PACKAGES := gnuradio gnuradio-dev python3-pyqtgraph python3-scipy python3-matplotlib \
                python3-yaml python3-pyqt5 cmake g++ pybind11-dev xvfb xauth
export QT_QPA_PLATFORM ?= offscreen

.PHONY: setup demo test lint pytest ctest build install clean baseline-venv

setup: $(STAMPS)/apt $(STAMPS)/venv build

$(STAMPS)/apt: Makefile
	@mkdir -p $(STAMPS)
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "== installing Debian packages: $$missing"; \
	  SUDO=$$( [ $$(id -u) -eq 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	@touch $@

$(STAMPS)/venv: $(STAMPS)/apt requirements.txt constraints.txt pyproject.toml
	@echo "== Python venv in $(VENV)"
	@[ -x $(PY) ] || /usr/bin/python3 -m venv --system-site-packages $(VENV)
	@out=$$($(PY) -m pip install -q --disable-pip-version-check -c constraints.txt \
	  -r requirements.txt 2>&1) || { echo "$$out"; exit 1; }
	@$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	@$(PY) -c "import numpy, torch; from gnuradio import gr; assert numpy.__version__ < '2', numpy.__version__"
	@touch $@

build: $(STAMPS)/venv
	@cmake -S . -B build -DPYTHON_EXECUTABLE=$(abspath $(PY)) -DCMAKE_INSTALL_PREFIX=$(abspath install) >/dev/null
	@cmake --build build -j2 >/dev/null

install: build
	cmake --install build

demo: setup
	$(VENV)/bin/specdiff demo --out out/demo_spectrogram.png
	$(VENV)/bin/specdiff sense --out out/demo

lint: $(STAMPS)/venv
	$(VENV)/bin/ruff check python tests benchmarks

pytest: setup
	$(PY) -m pytest -q tests

ctest: build
	ctest --test-dir build --output-on-failure

test: setup lint pytest ctest

# Table II's DeepLabV3-MobileNetV3 needs torchvision, which does not import beside .venv's
# torch 2.13 CPU build. This venv (no GNU Radio: run the package from python/) pairs the
# torch 2.14.1 and torchvision 0.29.1 wheels (CUDA builds, ~5.5 GB; they run on the CPU):
#   PYTHONPATH=python .venv-baselines/bin/python benchmarks/compare_budget.py --only deeplab ...
BASELINE_VENV := .venv-baselines
baseline-venv: $(STAMPS)/baseline-venv

$(STAMPS)/baseline-venv: Makefile
	@echo "== baseline venv in $(BASELINE_VENV) (torch 2.14.1 + torchvision 0.29.1)"
	@[ -x $(BASELINE_VENV)/bin/python ] || /usr/bin/python3 -m venv $(BASELINE_VENV)
	@$(BASELINE_VENV)/bin/pip install -q --disable-pip-version-check torch==2.14.1 \
	  torchvision==0.29.1 'numpy<2' pyyaml scipy tqdm matplotlib
	@PYTHONPATH=python $(BASELINE_VENV)/bin/python -c \
	  "from gr_specdiff.model.baselines import deeplab_available; assert deeplab_available()"
	@mkdir -p $(STAMPS) && touch $@

clean:
	rm -rf build install $(STAMPS) $(VENV) $(BASELINE_VENV)
