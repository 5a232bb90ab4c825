# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

LOCK := requirements/lock.txt
# the lock's package lines: pip freeze without this package, CPU torch's "+cpu" label dropped
FREEZE = pip freeze --exclude-editable | grep -v '^\#' | sed 's/+cpu$$//' | sort -f

.PHONY: demo test venv bench clean lock

$(STAMP): setup.py $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c $(LOCK) -e '.[host,plot,dev]'
	touch $(STAMP)

# Refresh the lock: the newest versions setup.py allows (torch stays at the locked CPU build),
# frozen into $(LOCK). Then `make clean test`: the full suite must pass before committing it.
lock:
	rm -rf build/lock-venv
	$(PYTHON) -m venv build/lock-venv
	build/lock-venv/bin/pip install --quiet --upgrade pip
	grep -i '^torch==' $(LOCK) > build/lock-torch.txt
	build/lock-venv/bin/pip install --quiet -c build/lock-torch.txt -e '.[host,plot,dev]'
	{ grep '^#' $(LOCK); build/lock-venv/bin/$(FREEZE); } > $(LOCK).new
	mv $(LOCK).new $(LOCK)
	rm -rf build/lock-venv build/lock-torch.txt
	@echo "refreshed $(LOCK): now run 'make clean test'; commit it only when the full suite passes"

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/toolkit demo

test: $(STAMP)
	$(BIN)/python -m pytest -q tests
	$(MAKE) --no-print-directory test-device

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run_all

clean:
	rm -rf $(VENV) build *.egg-info demo-out

# The device-side suite on each JetPack's Python and libraries (docs/development.md): venvs
# .venv-jp4 / .venv-jp5 from requirements/ci-*.txt, reused until those or setup.py change; a job
# whose interpreter is missing says so in one line and skips.
.PHONY: test-device test-jp4 test-jp5 clean-device
test-device: test-jp4 test-jp5

test-jp4:
	@.ci/device-tests jp4 3.6 requirements/ci-jp4.txt

test-jp5:
	@.ci/device-tests jp5 3.8 requirements/ci-jp5.txt

clean-device:
	rm -rf .venv-jp4 .venv-jp5
