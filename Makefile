# One entry point for the common tasks. `make test` is the command CI runs (through .ci/run).
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: help venv tools docker browser test test-unit lint format dashboards check-monitoring tiny-model image-wheels test-stack bench perf-gate up up-cpu down

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

tiny-model: venv ## build the tiny random OFA model (tests, CPU demo) into .tiny-model/
	$(PY) -m ofa_ve.tiny_model .tiny-model

image-wheels: venv ## fill services/ofa-ve/wheels/ so the ofa-ve image builds without downloading
	scripts/fetch-image-wheels.sh

test-stack: venv tools ## only the end-to-end container tests
	$(PY) -m pytest tests/integration/stack tests/unit/stack $(PYTEST_ARGS)

bench: venv tools ## benchmarks: tables on stdout, JSON under bench/results/
	$(PY) bench/ofa_ve_bench.py
	$(PY) bench/relay_bench.py

# The baseline: $$PERF_GATE_BASELINE_REF, else the commit recorded in the baseline file, else its numbers.
PERF_GATE_BASELINE_FILE ?= tools/perf-gate/baselines/cpu-tiny.json
perf-gate: venv ## performance gate as CI runs it: this tree against the baseline, tiny model (tools/perf-gate/)
	$(PY) -m perf_gate ab --baseline auto --baseline-file $(PERF_GATE_BASELINE_FILE) --candidate path:. \
	  --tiny-model .tiny-model --slo-class cpu-tiny --confirm \
	  --json bench/results/perf-gate.json --markdown bench/results/perf-gate.md

up: ## the stack on a GPU host (needs .env)
	docker compose up -d

up-cpu: ## the stack without a GPU (needs .env)
	docker compose -f docker-compose.yml -f docker-compose.cpu.yml up -d

down: ## stop the stack (volumes are kept; `docker compose down -v` deletes the data)
	docker compose -f docker-compose.yml -f docker-compose.cpu.yml down
