# Every target sets itself up: a fresh clone needs only python3 (3.11+) and, for `deploy`, node and npm.
VENV := .venv
PYTHON := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
CDK_CLI := node_modules/.bin/cdk
CHECKOV := .tools/checkov/bin/checkov
# Real Airflow, the oracle of Parse's Airflow checks in tests (tests/oracle): never a dependency of the project.
AIRFLOW_TOOL := .tools/airflow-3.3.2/bin/python
# jsii's banner about this machine's Node 20 (past end of life, still working) buries the output.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: install demo test synth deploy bench dist clean

install: $(INSTALLED)

# Reinstalled only when the pinned dependencies change.
$(INSTALLED): pyproject.toml client/pyproject.toml
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e ./client -e '.[dev]'
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

# Airflow and its two providers pin their own dependency tree: they live in a tool environment of their own.
$(AIRFLOW_TOOL):
	python3 -m venv .tools/airflow-3.3.2
	.tools/airflow-3.3.2/bin/pip install --quiet --disable-pip-version-check apache-airflow==3.3.2 \
		apache-airflow-providers-standard==1.21.0 apache-airflow-providers-common-sql==2.4.0

test: install $(CHECKOV) $(AIRFLOW_TOOL)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest -n 2

synth: install
	$(PYTHON) -m cdk.app
	@ls cdk.out/*.template.json

# cdk.json runs `python -m cdk.app`: the virtualenv's python, with the project installed.
deploy: install $(CDK_CLI)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(CDK_CLI) deploy --require-approval broadening

bench: install
	$(PYTHON) -m local_mode.bench

# The CI client's wheel, what `pip install ./client` builds: to publish to a package index.
dist: install
	$(PYTHON) -m pip wheel --quiet --disable-pip-version-check --no-deps --wheel-dir dist ./client
	@ls dist/*.whl

clean:
	rm -rf $(VENV) .tools node_modules cdk.out .local dist
