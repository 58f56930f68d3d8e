# Contributor shortcuts; CI runs .ci/run (the README's install, ruff, SLURM, the full pytest).
.PHONY: lint format test-quick test

lint:  ## ruff, as CI runs it
	ruff check . && ruff format --check .

format:  ## fix what ruff can
	ruff check --fix . && ruff format .

test-quick:  ## about 3 minutes on 2 cores: everything but the end-to-end, cluster and subprocess tests
	pytest -m "not slow"

test:  ## the full suite, as CI runs it (the cluster tests start a local SLURM when run as root)
	pytest
