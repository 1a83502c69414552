# The README's two commands are `make demo` and `make test`; both install what they need first.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# jsii warns on every start that Node 20 is past end-of-life; we know, and pin the CDK CLI.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PYTHONDONTWRITEBYTECODE := 1

VENV := .venv
PY := $(VENV)/bin/python
# `cdk.json` runs `python3 app.py`: the venv goes first on PATH so that is our interpreter.
export PATH := $(abspath $(VENV)/bin):$(PATH)
STAMP_PY := $(VENV)/.installed
# checkov pins a boto3 the app cannot share, so it lives in a virtual environment of its own.
CHECKOV_VENV := .venv-checkov
STAMP_CHECKOV := $(CHECKOV_VENV)/.installed
STAMP_NODE := node_modules/.installed
CDK := npx --no-install cdk
CHECKOV := $(CHECKOV_VENV)/bin/checkov
# Context switches synthesized beside the default app, each `-c <name>=true` into cdk.out.<name>/,
# and scanned by checkov. An optional construct adds its switch here (e.g. athena detection).
SYNTH_VARIANTS := fleet detection athena
# Every template checkov scans (globs, expanded when the recipe runs).
CHECKOV_TEMPLATES = cdk.out/*.template.json $(foreach v,$(SYNTH_VARIANTS),cdk.out.$(v)/*.template.json)

.PHONY: help install lock demo test lint unit synth synth-variants nag-lint checkov clean

help:
	@echo "make demo    run the whole workshop offline (installs first if needed)"
	@echo "make test    lint, unit + integration tests, cdk synth with cdk-nag, cfn-lint"
	@echo "make synth   synthesize the CloudFormation template into cdk.out/"
	@echo "make checkov scan every synthesized template (default app and variants) with checkov"
	@echo "make install create .venv, .venv-checkov and node_modules from the locks"
	@echo "make lock    recompile the locks (requirements*.txt) from requirements*.in"

install: $(STAMP_PY) $(STAMP_CHECKOV) $(STAMP_NODE)

# The locks pin every transitive package; the .in files hold the top-level intent.
$(STAMP_PY): requirements.txt requirements-dev.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -qq --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	touch $@

$(STAMP_CHECKOV): requirements-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install -qq --disable-pip-version-check -r $<
	touch $@

PIP_COMPILE := $(VENV)/bin/pip-compile -q --strip-extras --allow-unsafe \
	--no-emit-index-url --no-emit-find-links
# torch is pinned as the plain release: the lock must not name this machine's local +cpu build.
lock: $(STAMP_PY)
	$(PIP_COMPILE) -o requirements.txt requirements.in
	sed -i 's/^torch==\([0-9.]*\)+cpu$$/torch==\1/' requirements.txt
	$(PIP_COMPILE) -o requirements-dev.txt requirements-dev.in
	$(PIP_COMPILE) -o requirements-checkov.txt requirements-checkov.in

$(STAMP_NODE): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: install
	$(PY) -m secml demo

test: install lint unit synth nag-lint checkov

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

unit:
	$(VENV)/bin/pytest

# cdk-nag runs as a validation plugin during synth: any unacknowledged finding fails it.
synth: install
	$(CDK) synth --quiet --output cdk.out

nag-lint:
	$(VENV)/bin/cfn-lint cdk.out/*.template.json

# cdk-nag runs in each of these synths too.
synth-variants: install
	for variant in $(SYNTH_VARIANTS); do \
		$(CDK) synth --quiet -c "$$variant=true" --output "cdk.out.$$variant"; \
	done

# checkov, the second scanner: zero failures; skipped checks and their reasons in .checkov.yaml.
checkov: synth synth-variants
	files=(); for template in $(CHECKOV_TEMPLATES); do files+=(--file "$$template"); done; \
	$(CHECKOV) --config-file .checkov.yaml "$${files[@]}"

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) node_modules cdk.out cdk.out.* demo-output
