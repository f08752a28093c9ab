# One entry point for the common tasks. `make test` is the command CI runs (through .ci/run).
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: help venv tools docker browser test test-unit lint format dashboards check-monitoring tiny-model image-wheels test-stack drills bench bench-stress gpus up up-cpu down secrets snapshots compare perf-gate

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

drills: venv tools ## only the incident drills (tests/drills, compressed time; -rP shows every transcript)
	$(PY) -m pytest tests/drills -rP $(PYTEST_ARGS)

bench: venv tools ## benchmarks: tables on stdout, JSON under bench/results/
	$(PY) bench/ofa_ve_bench.py
	$(PY) bench/relay_bench.py
	$(PY) bench/snapshot_bench.py

bench-stress: venv ## overload, body memory and scrape impact: this tree against BASELINE (default main), interleaved
	$(PY) bench/ofa_ve_stress.py --baseline $(or $(BASELINE),main)

gpus: ## docker-compose.gpus.yml: one ofa-ve replica pinned per GPU, e.g. make gpus GPUS="0 1 2 3"
	$(PY) scripts/gen_gpu_compose.py $(GPUS) > docker-compose.gpus.yml

# The baseline: $$PERF_GATE_BASELINE_REF, else the commit recorded in the baseline file, else its numbers.
PERF_GATE_BASELINE_FILE ?= tools/perf-gate/baselines/cpu-tiny.json
perf-gate: venv ## performance gate as CI runs it: this tree against the baseline, tiny model (tools/perf-gate/)
	$(PY) -m perf_gate ab --baseline auto --baseline-file $(PERF_GATE_BASELINE_FILE) --candidate path:. \
	  --tiny-model .tiny-model --slo-class cpu-tiny --confirm \
	  --json bench/results/perf-gate.json --markdown bench/results/perf-gate.md

up: ## the stack on a GPU host (no .env needed: secrets are generated; .env turns on robots and email)
	docker compose up -d

up-cpu: ## the stack without a GPU (no .env needed)
	docker compose -f docker-compose.yml -f docker-compose.cpu.yml up -d

secrets: ## print the generated (or .env) Grafana admin password and relay token (the /inbox password)
	docker compose run --rm --no-deps init show grafana_admin_password relay_token

down: ## stop the stack (volumes are kept; `docker compose down -v` deletes the data)
	docker compose -f docker-compose.yml -f docker-compose.cpu.yml down

snapshots: ## copy the daily snapshots out of the stack into ./snapshots/ (open ./snapshots/<day>/report.html)
	docker compose cp metrics-snapshot:/snapshots/. ./snapshots/

compare: ## before/after report in the stack, e.g. make compare A=revision=v1.0 B=revision=v1.1 (Markdown on stdout)
	docker compose exec metrics-snapshot metrics-snapshot compare --a "$(A)" --b "$(B)"
