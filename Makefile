# Every target sets itself up: a fresh clone needs only python3 (3.11+) and, for `deploy`, node and npm.
VENV := .venv
PYTHON := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
CDK_CLI := node_modules/.bin/cdk
CHECKOV := .tools/checkov/bin/checkov
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1

.PHONY: install demo test synth deploy bench clean

install: $(INSTALLED)

# Reinstalled only when the pinned dependencies change.
$(INSTALLED): pyproject.toml
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

$(CDK_CLI): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

demo: install
	$(VENV)/bin/astro-dag-deploy local

# checkov pins boto3 exactly, two years behind ours: it lives in its own tool environment.
$(CHECKOV):
	python3 -m venv .tools/checkov
	.tools/checkov/bin/pip install --quiet --disable-pip-version-check checkov==3.3.30

test: install $(CHECKOV)
	$(VENV)/bin/pytest

synth: install
	$(PYTHON) -m cdk.app
	@echo "template: cdk.out/$$($(PYTHON) -c 'import json; print(json.load(open("cdk.json"))["context"]["stackName"])').template.json"

deploy: install $(CDK_CLI)
	$(CDK_CLI) deploy --require-approval broadening

clean:
	rm -rf $(VENV) node_modules cdk.out .local
