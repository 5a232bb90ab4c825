# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

LOCK := requirements/lock.txt
# the lock's package lines: pip freeze without this package, CPU torch's "+cpu" label dropped
FREEZE = pip freeze --exclude-editable | grep -v '^\#' | sed 's/+cpu$$//' | sort -f

# Triton tests (x86-64): the client in the venv, the nvidia-pytriton wheel's tritonserver and the
# Python backend's environment (numpy < 2) in .venv-triton. Elsewhere the Triton tests skip.
TRITON_ENV := .venv-triton
TRITON_STAMP := $(TRITON_ENV)/.installed
ifeq ($(shell uname -m),x86_64)
TRITON_TEST := $(TRITON_STAMP)
TRITON_REQUIRED := TOOLKIT_REQUIRE_TRITON=1
endif

.PHONY: demo test venv bench clean lock triton-env

$(STAMP): setup.py $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c $(LOCK) -e '.[host,plot,dev,triton]'
	touch $(STAMP)

# Refresh the lock: the newest versions setup.py allows (torch stays at the locked CPU build),
# frozen into $(LOCK). Then `make clean test`: the full suite must pass before committing it.
lock:
	rm -rf build/lock-venv
	$(PYTHON) -m venv build/lock-venv
	build/lock-venv/bin/pip install --quiet --upgrade pip
	grep -i '^torch==' $(LOCK) > build/lock-torch.txt
	build/lock-venv/bin/pip install --quiet -c build/lock-torch.txt -e '.[host,plot,dev,triton]'
	{ grep '^#' $(LOCK); build/lock-venv/bin/$(FREEZE); } > $(LOCK).new
	mv $(LOCK).new $(LOCK)
	rm -rf build/lock-venv build/lock-torch.txt
	@echo "refreshed $(LOCK): now run 'make clean test'; commit it only when the full suite passes"

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/toolkit demo

test: $(STAMP) $(TRITON_TEST)
	$(TRITON_REQUIRED) $(BIN)/python -m pytest -q tests
	$(MAKE) --no-print-directory test-device

$(TRITON_STAMP): $(STAMP) requirements/triton-env.txt
	$(PYTHON) -m venv $(TRITON_ENV)
	$(TRITON_ENV)/bin/pip install --quiet -r requirements/triton-env.txt
	$(TRITON_ENV)/bin/pip install --quiet --no-deps nvidia-pytriton==0.7.0
	touch $(TRITON_STAMP)

triton-env: $(TRITON_STAMP)

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run_all

clean:
	rm -rf $(VENV) $(TRITON_ENV) build *.egg-info demo-out

# The device-side suite on each JetPack's Python and libraries (docs/development.md): venvs
# .venv-jp4 / .venv-jp5 from requirements/ci-*.txt, reused until those or setup.py change; a job
# whose interpreter is missing says so in one line and skips.
.PHONY: test-device test-jp4 test-jp5 test-jp5-avx2 clean-device
test-device: test-jp4 test-jp5 test-jp5-avx2

test-jp4:
	@.ci/device-tests jp4 3.6 requirements/ci-jp4.txt

test-jp5:
	@.ci/device-tests jp5 3.8 requirements/ci-jp5.txt

# the jp5 suite on an x86-64 without VNNI (AVX2 only), emulated by qemu-x86_64 (qemu-user)
test-jp5-avx2:
	@EMULATE_CPU=Haswell-v4 .ci/device-tests jp5 3.8 requirements/ci-jp5.txt

clean-device:
	rm -rf .venv-jp4 .venv-jp5 build/arm64-jp4 build/arm64-jp5

# opt-in: the device suite on an emulated Cortex-A57 with each JetPack's libraries (root,
# qemu-user, debootstrap; docs/development.md)
.PHONY: test-arm64 test-arm64-jp4 test-arm64-jp5
test-arm64: test-arm64-jp4 test-arm64-jp5

test-arm64-jp4 test-arm64-jp5: test-arm64-%: $(STAMP)
	@PIP="$(BIN)/python -m pip" .ci/arm64-tests $*

# Do the Jetson requirement files resolve to aarch64 wheels on PyPI? (needs the network; a
# Jetson cannot build numpy, onnx or onnxruntime from source in any reasonable time)
.PHONY: jetson-wheels
jetson-wheels:
	rm -rf build/jetson-wheels
	$(PYTHON) -m pip download --quiet --dest build/jetson-wheels/jp4 --only-binary :all: \
		--platform manylinux2014_aarch64 --implementation cp --python-version 36 --abi cp36m \
		-r requirements/jetson-jp4.txt
	$(PYTHON) -m pip download --quiet --dest build/jetson-wheels/jp5 --only-binary :all: \
		--platform manylinux2014_aarch64 --implementation cp --python-version 38 --abi cp38 \
		-r requirements/jetson-jp5.txt
	@echo "both Jetson requirement files resolve to aarch64 wheels (build/jetson-wheels)"
