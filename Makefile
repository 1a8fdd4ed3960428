# Two commands: `make run` and `make test`. Each installs what is missing first (uv, the locked venv).
SHELL := /bin/bash
.DEFAULT_GOAL := run

PYTHON ?= python3.11
UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := $(PYTHON) -m uv
endif
PY := .venv/bin/python

AS_OF ?=
DATA ?=
WAREHOUSE ?= warehouse
EXPORTS ?= exports
FEED_OPTS ?=
MANIFEST := dbt_project/target/manifest.json
DBT_SOURCES := $(shell find dbt_project/models dbt_project/seeds dbt_project/macros -type f 2>/dev/null) dbt_project/dbt_project.yml

FROM ?=
TO ?=

.PHONY: install run backfill retention soak test test-fast mutants lint format clean bench system-packages bi dashboards docs deploy-test

install: .venv/.installed $(MANIFEST)

# --compile-bytecode: this machine (and CI) sets PYTHONDONTWRITEBYTECODE, so without .pyc files every
# Python process would compile Airflow, dbt and GX from source again (about 9 s for GX alone).
.venv/.installed: pyproject.toml uv.lock
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) sync --frozen --python 3.11 --compile-bytecode
	@touch $@

# Cosmos renders the dbt task group from this manifest; it is rebuilt whenever the dbt project changes.
$(MANIFEST): .venv/.installed $(DBT_SOURCES)
	cd dbt_project && ../.venv/bin/dbt parse --profiles-dir . --quiet

run: install
	AS_OF="$(AS_OF)" DATA="$(DATA)" WAREHOUSE="$(WAREHOUSE)" EXPORTS="$(EXPORTS)" FEED_OPTS="$(FEED_OPTS)" \
		$(PY) -m pipeline.local_run $(if $(FULL_REFRESH),--full-refresh)

# Rebuild the marts and renewal_history for every day FROM..TO (oldest first), one DAG run a day, through Airflow;
# a backfill exports, marks and e-mails no reminders.
backfill: install
	@[ -n "$(FROM)" ] && [ -n "$(TO)" ] || { echo "usage: make backfill FROM=YYYY-MM-DD TO=YYYY-MM-DD [DATA=DIR]" >&2; exit 2; }
	FROM="$(FROM)" TO="$(TO)" DATA="$(DATA)" WAREHOUSE="$(WAREHOUSE)" EXPORTS="$(EXPORTS)" FEED_OPTS="$(FEED_OPTS)" \
		$(PY) -m pipeline.local_run

# The retention policy by hand (README, Retention); the daily run applies it as its last task.
retention: install
	WAREHOUSE="$(WAREHOUSE)" EXPORTS="$(EXPORTS)" $(PY) -m pipeline.retention apply $(if $(COMPACT),--compact)

# The daily DAGs day after day over one timeline (bench/soak.py): skipped days, a rerun, a run killed half-way,
# each day compared with a rebuild from nothing; OUT/soak.json (default bench/soak.json). EVERY=7: the scheduler
# runs every 7th day only, a long period in fewer runs.
INSTITUTIONS ?= 200
EVERY ?= 1
soak: install
	@[ -n "$(FROM)" ] && [ -n "$(TO)" ] || { echo "usage: make soak FROM=YYYY-MM-DD TO=YYYY-MM-DD [INSTITUTIONS=200] [EVERY=1] [OUT=bench]" >&2; exit 2; }
	$(PY) bench/soak.py --from "$(FROM)" --to "$(TO)" --institutions "$(INSTITUTIONS)" --every "$(EVERY)" --out "$(if $(filter command line environment,$(origin OUT)),$(OUT),bench)"

# Test files run in parallel, one pytest worker per core (pytest-xdist), each file whole in one worker so that its
# module fixtures (a published warehouse, a running Superset, a week of Airflow runs) are made once. The files go
# out in the order tests/conftest.py gives them, the longest first (xdist's own order is by number of tests).
TEST_WORKERS ?= auto
PYTEST_XDIST = -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder
test: install bi/.venv/.installed system-packages
	$(PY) -m pytest $(PYTEST_XDIST)

# Debian packages the tests use (PostgreSQL, LibreOffice, poppler, CJK fonts, Chromium), installed when missing.
system-packages:
	@bash tests/install-system-packages.sh

# The quick loop: the tests not marked slow (no Airflow, Superset, browser or database server, no warehouse build;
# the rules' dbt unit tests on an empty warehouse, marked dbt, are in).
test-fast: install
	$(PY) -m pytest -m "not slow" -q $(PYTEST_XDIST)

# Mutation testing of the rules: each mutation of tests/mutation/mutants.tsv alone against the fast tier.
mutants: install
	$(PY) tests/mutation/run.py

# Province-scale benchmark (bench/README.md): 200 and 2,000 institutions, about 10 min here; BENCH_SIZES=6000 adds the largest size.
bench: install system-packages
	$(PY) bench/run.py

# Python: ruff's rules and format, and mypy's types ([tool.mypy]; bi/ against Superset's own venv); SQL: sqlfluff over
# the dbt models, tests and macros (dbt_project/.sqlfluff).
lint: install bi/.venv/.installed
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	cd dbt_project && ../.venv/bin/sqlfluff lint models tests macros
	.venv/bin/mypy
	.venv/bin/mypy --python-executable bi/.venv/bin/python --explicit-package-bases --disable-error-code import-untyped bi/*.py

# What lint checks, fixed where a tool can: ruff's fixes and format, sqlfluff's fixes of the dbt SQL.
format: install
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .
	cd dbt_project && ../.venv/bin/sqlfluff fix models tests macros

# docker-compose.yml brought up for real (demo profile, fresh secrets), driven end to end, checked and taken
# down (deploy/deploy_test.py): Docker if it answers, else rootful podman from Debian; stand-in base images from
# Debian packages where no registry answers. Writes $(OUT)/deploy-report.json.
OUT ?= deploy-test
deploy-test: install
	$(PY) deploy/deploy_test.py --out "$(OUT)"

clean:
	rm -rf .airflow warehouse exports data dbt_project/target dbt_project/logs

# ---- BI: Apache Superset in its own locked virtualenv (bi/), the dashboards as code (bi/dashboards/) ----
SHOTS ?= shots
BI_PORT ?= 8088
BI_PY := bi/.venv/bin/python

bi/.venv/.installed: bi/pyproject.toml bi/uv.lock
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	cd bi && $(UV) sync --frozen --python 3.11 --compile-bytecode
	@touch $@

# Superset on http://localhost:$(BI_PORT) over $(WAREHOUSE)/published.duckdb (read-only); admin password printed once,
# a demo login per supervising centre (centre_350100 …) with its password in .superset/.
bi: bi/.venv/.installed
	$(BI_PY) bi/serve.py --warehouse "$(WAREHOUSE)" --port $(BI_PORT)

# Every dashboard (or only DASHBOARD=<slug>) opened in headless Chromium as a centre's demo login (CENTRE=350100;
# default the province's), checked chart by chart against that centre's rows, and what else that login can reach;
# one PNG per dashboard and report.json into $(SHOTS).
dashboards: bi/.venv/.installed
	$(BI_PY) bi/render_dashboards.py --warehouse "$(WAREHOUSE)" --shots "$(SHOTS)" $(if $(CENTRE),--centre "$(CENTRE)") \
		$(if $(DASHBOARD),--dashboard "$(DASHBOARD)")

# The dbt docs site (lineage down to the dashboards and reminder exports) in dbt_project/target/index.html;
# column types come from $(WAREHOUSE)/warehouse.duckdb when a run has built it (else an empty catalog).
DOCS_DB := $(abspath $(WAREHOUSE))/warehouse.duckdb
docs: install
	cd dbt_project && if [ -f "$(DOCS_DB)" ]; then db="$(DOCS_DB)"; catalog=; else db=:memory:; catalog=--empty-catalog; fi; \
		WAREHOUSE_DB="$$db" ../.venv/bin/dbt docs generate --profiles-dir . $$catalog \
		--vars '{as_of: "$(or $(AS_OF),$(shell date +%F))"}'
	@echo "dbt docs: dbt_project/target/index.html (serve: cd dbt_project && ../.venv/bin/dbt docs serve --profiles-dir .)"
