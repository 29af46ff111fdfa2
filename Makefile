# The two commands of the README: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test bench chaos ha failover-test lock messages clean

$(STAMP): pyproject.toml requirements.lock
	PYTHON=$(PYTHON) VENV=$(VENV) bash .ci/system-packages run
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

run: $(STAMP)  ## serve on http://127.0.0.1:8080 (PORT overrides), embedded Redis unless PORTAL_REDIS_URL
	$(PY) -m portal.serve

test:  ## the whole suite; installs the Debian packages it drives first (.ci/system-packages)
	PYTHON=$(PYTHON) VENV=$(VENV) bash .ci/system-packages test
	$(MAKE) --no-print-directory $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)  ## every resident page under load, as a ratio of a bare Flask floor (installs wrk once)
	PYTHON=$(PYTHON) VENV=$(VENV) bash .ci/system-packages bench
	$(PY) -m tests.bench.run $(BENCH_ARGS)
	$(PY) -m tests.bench.campaigns  # the landing with 1,000 campaigns next to one (issue 11)
	$(PY) -m tests.bench.precompress  # gzip of the filled page against renders kept pre-compressed (issue 14)

chaos: $(STAMP)  ## 1,000 complaints through failures; must end 1000 / 0 / 0
	$(PY) -m tests.chaos.run

ha: $(STAMP)  ## several machines on one: Redis + 2 replicas + 3 Sentinels, 2 nodes + workers, nginx (HA_PORT, default 8090)
	PYTHON=$(PYTHON) VENV=$(VENV) bash .ci/system-packages ha
	$(PY) -m portal.ha_local

failover-test: $(STAMP)  ## journeys through nginx while the Redis primary and a node are SIGKILLed; must end N / 0 / 0
	PYTHON=$(PYTHON) VENV=$(VENV) bash .ci/system-packages ha
	$(PY) -m tests.ha.failover

lock:  ## re-pin the whole dependency tree after changing pyproject.toml
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install -q -e '.[test]' && .venv-lock/bin/pip freeze --exclude-editable > requirements.lock
	rm -rf .venv-lock

messages: $(STAMP)  ## extract new strings into the catalogs
	$(VENV)/bin/pybabel extract -F landing_pages/babel.cfg -o landing_pages/translations/messages.pot .
	$(VENV)/bin/pybabel update -i landing_pages/translations/messages.pot -d landing_pages/translations --no-fuzzy-matching

clean:
	rm -rf $(VENV) .pytest_cache
