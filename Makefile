# One entry point for the common tasks. `make test` is the command CI runs (through .ci/run).
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: help venv tools docker browser test test-unit lint format dashboards check-monitoring

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-17s %s\n", $$1, $$2}'

venv: ## create/refresh .venv with the locked dependency set
	scripts/bootstrap-venv.sh

tools: ## prometheus, promtool, alertmanager, amtool at the pinned versions into .tools/bin
	scripts/provision-tools.sh

docker: ## Docker engine + Compose v2 + local stand-in images (root)
	scripts/provision-docker.sh

browser: ## Debian's Chromium for the UI test (root)
	scripts/provision-browser.sh

lint: venv ## ruff
	$(PY) -m ruff check .

test: venv tools ## lint, then the whole test suite
	$(PY) -m ruff check .
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: venv tools ## unit tests only
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

format: venv ## ruff autofix
	$(PY) -m ruff check --fix .

dashboards: venv ## regenerate grafana/dashboards/*.json from scripts/dashgen (a test fails on stale JSON)
	$(PY) scripts/gen_dashboards.py

check-monitoring: tools ## promtool/amtool checks of prometheus/ and alertmanager/
	.tools/bin/promtool check config prometheus/prometheus.yml
	.tools/bin/promtool check rules prometheus/rules/*.yml prometheus/alerts/*.yml
	.tools/bin/promtool test rules prometheus/tests/*-test.yml
	.tools/bin/amtool check-config alertmanager/alertmanager.yml
