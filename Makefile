# tierlake — the two quick-start commands are `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
WORKDIR ?= work/demo

.PHONY: demo test test-fast lint format java-check browser-check install clean lock

# Java 17+ is needed by Spark; say how to get it instead of failing inside the JVM launcher.
java-check:
	@v=$$(java -version 2>&1 | awk -F'"' '/version/ {print $$2}' | cut -d. -f1); \
	if [ -z "$$v" ]; then echo "Java 17+ is required by Spark and was not found. Install it with:"; \
	  echo "    sudo apt-get install -y openjdk-17-jre-headless"; exit 1; fi; \
	if [ "$$v" -lt 17 ] 2>/dev/null; then echo "Java $$v found; Spark 4 needs Java 17 or newer. Install it with:"; \
	  echo "    sudo apt-get install -y openjdk-17-jre-headless"; exit 1; fi

# The report test renders report.html in Debian's headless Chromium: install it when we can.
browser-check:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = "0" ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "Chromium is needed by the report test. Install it with:"; echo "    sudo apt-get install -y chromium"; exit 1; fi; }

$(BIN)/python:
	$(PY) -m venv $(VENV)

# Every install resolves the same: constraints.txt pins the runtime tree, constraints-dev.txt the
# test, lint and type-check tools on top of it.
$(VENV)/.installed: pyproject.toml constraints.txt constraints-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -c constraints-dev.txt -e ".[dev]"
	touch $@

install: java-check $(VENV)/.installed

demo: install
	$(BIN)/tierlake demo --workdir $(WORKDIR)

test: install browser-check
	$(BIN)/python -m pytest -q -ra --durations=12

# Lint and format check (ruff) and type check (mypy), all configured in pyproject.toml; .ci/run runs
# them before the tests. `make format` applies the formatter.
lint: $(VENV)/.installed
	$(BIN)/python -m ruff check .
	$(BIN)/python -m ruff format --check .
	$(BIN)/python -m mypy

format: $(VENV)/.installed
	$(BIN)/python -m ruff format .
	$(BIN)/python -m ruff check --fix .

# Unit tests only (no Spark, no Prefect server).
test-fast: install
	$(BIN)/python -m pytest -q -ra -m "not spark and not prefect and not s3"

# Re-resolve the pins (run on purpose, commit the result): the runtime tree is what pip resolves
# for the package alone; the dev pins are the rest of the venv.
lock:
	$(BIN)/python -m pip install -q --dry-run --ignore-installed --report .lock-report.json .
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^tierlake' | $(BIN)/python -c "import json, sys; \
	  names = {i['metadata']['name'].lower().replace('_', '-') for i in json.load(open('.lock-report.json'))['install']}; \
	  pins = [l for l in sys.stdin.read().split() if '==' in l]; \
	  rt = [p for p in pins if p.split('==')[0].lower().replace('_', '-') in names]; \
	  open('constraints.txt', 'w').write('# Runtime pins: regenerate with make lock.\n' + '\n'.join(rt) + '\n'); \
	  open('constraints-dev.txt', 'w').write('# Test, lint and type-check pins on top of constraints.txt: regenerate with make lock.\n' + '\n'.join(p for p in pins if p not in rt) + '\n')"
	rm -f .lock-report.json

clean:
	rm -rf $(VENV) work build *.egg-info
