# Developer commands. Every target creates or reuses the virtualenv in .venv
# and installs what it needs, so a fresh clone only needs python3 (3.11+).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.swarmd-installed
NODE_STAMP := clients/node/node_modules/.swarmd-installed
PROTO_SRC := $(wildcard protos/swarmd/v1/*.proto)
PYTEST_ARGS ?=

.PHONY: FORCE help venv kube-binaries llama-server sandbox demo test lint plugin-docs protos protos-check protos-lint protos-breaking compose-check ci bench bench-full clean

help:
	@echo "make demo          run a demo swarm end to end (throwaway git repo, replayed model)"
	@echo "make test          run the test suite (builds kube-apiserver and the llama.cpp server once)"
	@echo "make kube-binaries build kube-apiserver & co. into ~/.cache/swarmd (once, ~9 min)"
	@echo "make llama-server  build llama-cpp-python's server and a small model into ~/.cache/swarmd"
	@echo "make sandbox       install bubblewrap, which confines the bash tool (STRICT=1: required)"
	@echo "make lint          ruff, mypy, buf lint, buf breaking (protos/BREAKING_BASELINE), import-cycle"
	@echo "                   and module-size checks, docs/plugin-reference.md up to date"
	@echo "make plugin-docs   regenerate docs/plugin-reference.md from the docstrings"
	@echo "make protos        regenerate the gRPC/protobuf code from protos/"
	@echo "make protos-check  fail when the committed generated code is stale"
	@echo "make compose-check validate compose.yaml against the compose spec"
	@echo "make bench         quick benchmark profile (bench-full: the long one)"

# swarmd is installed in setuptools' strict editable mode: a tree of links under
# build/__editable__.swarmd-*/swarmd/ mirrors the folders under their import names
# and sits on sys.path, so mypy, pyright and editors resolve every `swarmd.` import
# from a checkout (no import hook). The link tree holds one link per file: adding
# or removing a module changes $(MODULE_LIST), which re-links on the next make target.
MODULE_LIST := $(VENV)/.swarmd-modules
EDITABLE := --config-settings editable_mode=strict

$(MODULE_LIST): FORCE
	@mkdir -p $(VENV)
	@find protos/swarmd services plugins clients -path clients/node -prune -o -name __pycache__ -prune \
	  -o -type f \( -name '*.py' -o -name '*.pyi' -o -name py.typed -o -name '*.proto' -o -name '*.json' -o -name '*.jsonl' \) \
	  -print | LC_ALL=C sort > $@.tmp
	@if cmp -s $@.tmp $@; then rm $@.tmp; else mv $@.tmp $@; fi

# Two installs: RUN_STAMP is what running swarmd needs (make demo); STAMP adds the
# extras the tests, linters and benchmarks need (dev: test tools, the kubernetes
# extra, mypy, ruff, buf, grpcio-tools; bench: psutil, matplotlib).
RUN_STAMP := $(VENV)/.swarmd-installed-run

$(RUN_STAMP): pyproject.toml setup.py $(MODULE_LIST)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(EDITABLE) -e .
	@touch $(RUN_STAMP)

$(STAMP): pyproject.toml setup.py $(MODULE_LIST)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(EDITABLE) -e '.[dev,bench]'
	@touch $(STAMP) $(RUN_STAMP)

# The Node.js client (clients/node) and its tests need its npm dependencies.
$(NODE_STAMP): clients/node/package.json clients/node/package-lock.json
	npm ci --silent --no-audit --no-fund --prefix clients/node
	@touch $(NODE_STAMP)

venv: $(STAMP) $(NODE_STAMP)

demo: $(RUN_STAMP)
	$(BIN)/python examples/demo.py

# The Kubernetes executor's tests run against a real kube-apiserver built from
# Debian's source package into a cache outside the repository (seconds once built).
kube-binaries:
	scripts/build_kube_apiserver.sh >/dev/null

# bubblewrap for the bash tool's sandbox (swarmd.plugins.sandbox); without it bash
# runs unconfined and the sandbox tests are skipped (STRICT=1 makes that an error).
sandbox:
	scripts/install_sandbox.sh

# The realmodel tests run against llama-cpp-python's server with a small GGUF model,
# built once per machine into a versioned cache outside the repository (10 to 16
# minutes the first time, instant later); the tests find it through
# SWARMD_LLAMA_SERVER_DIR. A failed build fails here, loudly.
LLAMA_DIR_FILE := $(VENV)/.llama-server-dir

llama-server: $(STAMP)
	bash scripts/build_llama_server.sh > $(LLAMA_DIR_FILE).tmp
	@mv $(LLAMA_DIR_FILE).tmp $(LLAMA_DIR_FILE)
	@echo "llama.cpp server: $$(cat $(LLAMA_DIR_FILE))"

# pytest exits 5 when it collected no test; that must fail, not pass silently.
test: $(STAMP) $(NODE_STAMP) kube-binaries llama-server sandbox
	SWARMD_LLAMA_SERVER_DIR="$$(cat $(LLAMA_DIR_FILE))" $(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "no tests were collected" >&2; exit 1; fi; exit $$rc

lint: $(STAMP) protos-lint protos-breaking
	$(BIN)/ruff check .
	$(BIN)/mypy -p swarmd.plugins -p swarmd.clients -p swarmd.services
	$(BIN)/python scripts/check_import_cycles.py
	$(BIN)/python scripts/check_module_size.py
	$(BIN)/python scripts/gen_plugin_reference.py --check

plugin-docs: $(STAMP)
	$(BIN)/python scripts/gen_plugin_reference.py

protos-lint: $(STAMP)
	cd protos && ../$(BIN)/buf lint

# buf breaking against the baseline commit in protos/BREAKING_BASELINE.
protos-breaking: $(STAMP)
	BUF=$(BIN)/buf scripts/check_breaking.sh

protos: $(STAMP)
	$(BIN)/python scripts/gen_protos.py protos

protos-check: $(STAMP)
	$(BIN)/python scripts/gen_protos.py --check protos

compose-check:
	scripts/compose_check.sh

bench: $(STAMP)
	$(BIN)/python -m benchmarks

bench-full: $(STAMP)
	$(BIN)/python -m benchmarks --full

ci: protos-check lint compose-check test

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
