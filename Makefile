# Breakwater: `make run` starts everything, `make test` tests everything. `make help` lists the rest.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Two test processes, each with its own private stack, files kept together and the longest first
# (tests/conftest.py FILE_SECONDS; make test PYTEST_ARGS=... to change)
PYTEST_ARGS ?= -n 2 --dist loadfile --no-loadscope-reorder
FUZZ_EXAMPLES ?= 100
SWAGGER_UI ?= 5
SWAGGER_DIR := site/breakwater/static/vendor/swagger-ui
UPLOT ?= 1.6.32
UPLOT_DIR := site/breakwater/static/vendor/uplot

.DEFAULT_GOAL := help
.PHONY: help install deps run up down status reset test fuzz docs-assets dashboard-assets lint format clean config-docs bench bench-publish bench-db bench-cache bench-static bench-queue bench-flash bench-workers bench-spike locust cluster cluster-down test-cluster test-monitoring bench-cluster

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { echo "error: could not create $(VENV); install python3-venv (apt-get install python3-venv) and retry." >&2; exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install the project with its dev tools
	@# Bytecode for the project's own modules: every service and CLI process imports them, and with
	@# PYTHONDONTWRITEBYTECODE set (as on CI machines) Python would compile them again in each one.
	@$(BIN)/python -m compileall -q -j 0 site tests loadtests >/dev/null

deps: install ## Install missing system programs (MariaDB, Redis, Nginx, Varnish + varnish-modules) with apt-get; as root the services' user breakwater
	$(BIN)/breakwater stack check

run: deps ## Start the whole stack in the foreground and stream its logs (Ctrl-C stops it)
	$(BIN)/breakwater stack run

up: deps ## Start the whole stack in the background
	$(BIN)/breakwater stack up

down: install ## Stop the background stack
	$(BIN)/breakwater stack down

status: install ## Show every service with pid, port and health
	$(BIN)/breakwater stack status

reset: install ## Stop the stack and wipe all its state (.stack/)
	$(BIN)/breakwater stack down
	rm -rf .stack

test: install ## Run the test suite against a private stack on free ports (real browser included)
	$(BIN)/breakwater stack check --browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-cluster: install ## The multi-host suite: the stack over 4 network-namespace hosts, hosts crashed under load (root)
	$(BIN)/breakwater stack check
	BREAKWATER_TEST_CLUSTER=1 $(BIN)/python -m pytest tests/cluster $(CLUSTER_PYTEST_ARGS)

test-monitoring: install ## The monitoring suite: Prometheus scraping every tier, alerts firing on real faults, the /ops dashboard
	$(BIN)/breakwater stack check --browser
	BREAKWATER_TEST_MONITORING=1 $(BIN)/python -m pytest tests/monitoring $(MONITORING_PYTEST_ARGS)

cluster: deps ## The whole stack over HOSTS=4 hosts made of network namespaces (root; state in .stack/cluster)
	$(BIN)/breakwater cluster up --hosts $(or $(HOSTS),4)

cluster-down: install ## Stop the cluster and remove its hosts
	$(BIN)/breakwater cluster down

fuzz: install ## Schemathesis against every /api/ operation, longer than in `make test` (FUZZ_EXAMPLES=100)
	$(BIN)/breakwater stack check
	BREAKWATER_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest tests/test_openapi.py -k fuzz -q

docs-assets: ## Refresh the vendored Swagger UI of /api/docs from npm (SWAGGER_UI=5 picks the version)
	rm -rf .docs-assets && mkdir .docs-assets
	cd .docs-assets && npm pack --silent swagger-ui-dist@$(SWAGGER_UI) >/dev/null && tar xzf swagger-ui-dist-*.tgz
	cp .docs-assets/package/swagger-ui-bundle.js .docs-assets/package/swagger-ui-bundle.js.LICENSE.txt $(SWAGGER_DIR)/
	sed 's#/\*\# sourceMappingURL=[^*]*\*/##' .docs-assets/package/swagger-ui.css > $(SWAGGER_DIR)/swagger-ui.css
	cp .docs-assets/package/LICENSE $(SWAGGER_DIR)/LICENSE.txt && cp .docs-assets/package/NOTICE $(SWAGGER_DIR)/NOTICE.txt
	@echo "swagger-ui-dist $$(node -p "require('./.docs-assets/package/package.json').version") -> $(SWAGGER_DIR); update the version in its README.txt"
	rm -rf .docs-assets

dashboard-assets: ## Refresh the vendored uPlot of the /ops/ dashboard from npm (UPLOT=1.6.32 picks the version)
	rm -rf .dashboard-assets && mkdir .dashboard-assets && mkdir -p $(UPLOT_DIR)
	cd .dashboard-assets && npm pack --silent uplot@$(UPLOT) >/dev/null && tar xzf uplot-*.tgz
	cp .dashboard-assets/package/dist/uPlot.iife.min.js .dashboard-assets/package/dist/uPlot.min.css $(UPLOT_DIR)/
	cp .dashboard-assets/package/LICENSE $(UPLOT_DIR)/LICENSE.txt
	@echo "uplot $$(node -p "require('./.dashboard-assets/package/package.json').version") -> $(UPLOT_DIR); update the version in its README.txt"
	rm -rf .dashboard-assets

bench: deps ## Every benchmark on one private stack, one report in loadtests/results/<time>/, ignored by git (QUICK=1: short runs, in results/quick/)
	cd loadtests && BENCH_QUICK=$(QUICK) ../$(BIN)/python bench_all.py

# The run to publish: a report folder (default: the newest full one in loadtests/results/), or bench-cluster
RUN ?=
bench-publish: install ## Copy one full `make bench` run (RUN=<folder>; RUN=bench-cluster) into docs/benchmarks/ and its tables into docs/benchmarks.md, to commit
	cd loadtests && ../$(BIN)/python publish.py $(RUN)

bench-db: deps ## Measure the read/write router's overhead against one plain engine (writes loadtests/results/)
	cd loadtests && ../$(BIN)/python bench_db.py

bench-cache: deps ## Measure cached vs from-memory vs uncached endpoints (writes loadtests/results/)
	cd loadtests && ../$(BIN)/python bench_cache.py

bench-static: deps ## Measure emitted pages vs minimal Nginx, the edge, dynamic pages, publish latency (wrk + Locust)
	cd loadtests && ../$(BIN)/python bench_static.py

bench-queue: deps ## Queue blocking and its cure, pools for I/O work, RabbitMQ vs Redis (writes loadtests/results/)
	cd loadtests && ../$(BIN)/python bench_queue.py

bench-flash: deps ## Flash sale: rejection path vs cached /api/home, gate vs database-only path, one burst (chart); BENCH_QUICK=1 for a smoke run
	cd loadtests && ../$(BIN)/python bench_flash.py

bench-spike: deps ## The edge under a sudden crowd: cold edge vs bare Varnish at 1,000 connections (wrk), a Locust spike of visitors (chart)
	cd loadtests && ../$(BIN)/python bench_spike.py

# Locust's web UI; LOCUST_ARGS adds options, e.g. LOCUST_ARGS="--host http://127.0.0.1:8081" for the edge
LOCUST_ARGS ?=
locust: deps ## Locust's web UI on http://127.0.0.1:8089: visitors, editors, flash buyers (starts the stack if needed)
	@$(BIN)/python -c 'import sys; from breakwater_tools.stack import Stack; sys.exit(Stack().supervisor.pid is None)' \
		|| $(BIN)/breakwater stack up
	cd loadtests && ../$(BIN)/locust -f locustfile.py --class-picker --web-host 127.0.0.1 --web-port 8089 \
		--host "$$(../$(BIN)/python -c 'from breakwater.settings import Settings; print(Settings.load().origin_url)')" $(LOCUST_ARGS)

bench-workers: deps ## gunicorn sync vs gthread vs gevent: replica read, 50 ms upstream, Markdown render, memory
	cd loadtests && ../$(BIN)/python bench_workers.py

bench-cluster: deps ## 1, 2, 3 app hosts vs one machine (network namespaces, root): visitors, /api/home, failover time
	cd loadtests && ../$(BIN)/python bench_cluster.py

lint: install ## Ruff lint and format check, and the import layers ([tool.importlinter] in pyproject.toml)
	$(BIN)/ruff check site tests loadtests db
	$(BIN)/ruff format --check site tests loadtests db
	cd site && ../$(BIN)/lint-imports --no-cache ../pyproject.toml

format: install ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix site tests loadtests db
	$(BIN)/ruff format site tests loadtests db

clean: ## Remove the virtualenv and caches (keeps .stack/)
	rm -rf $(VENV) .pytest_cache .ruff_cache

config-docs: install ## Regenerate .env.example and the configuration table of docs/configuration.md from settings.py
	$(BIN)/python -c "from breakwater.settings import write_docs; write_docs()"
