# The two commands: `make run` (the app in demo mode on SQLite) and `make test`; `make test-fast` while you work.
VENV ?= .venv
export WEBINAR_PAY_ENV ?= development
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# The compiled catalogues (.mo) are built from the .po files, never committed: any target that runs the app
# compiles those older than their .po first.
CATALOGUES := $(wildcard webinar_pay/translations/*/LC_MESSAGES/messages.po)
COMPILED := $(CATALOGUES:.po=.mo)

.PHONY: run test test-fast lint worker clean translations

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

%.mo: %.po | $(STAMP)
	$(VENV)/bin/pybabel compile --statistics -i $< -o $@

translations: $(COMPILED)

instance/.migrated: $(STAMP) $(COMPILED) $(wildcard webinar_pay/migrations/versions/*.py)
	mkdir -p instance
	$(VENV)/bin/flask --app app db upgrade
	touch $@

# The links the app sends (checkout returns, tickets, emails) follow the port it runs on, unless BASE_URL says otherwise.
run: $(STAMP) $(COMPILED) instance/.migrated
	BASE_URL="$${BASE_URL:-http://127.0.0.1:$${PORT:-5000}}" $(VENV)/bin/flask --app app run --debug --port $${PORT:-5000}

worker: $(STAMP) $(COMPILED) instance/.migrated
	$(VENV)/bin/flask --app app worker

test: $(STAMP) $(COMPILED)
	tests/install-test-packages.sh
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest -n $${PYTEST_WORKERS:-2} $(PYTEST_ARGS)

# Everything but the tests marked `slow` (those that start processes), on SQLite only. pytest keeps its rewritten
# test modules (and schemathesis's, a plugin) in __pycache__ only when bytecode may be written: each run saves ~10 s.
test-fast: $(STAMP) $(COMPILED)
	$(VENV)/bin/ruff check .
	env -u TEST_DATABASE_URL -u PYTHONDONTWRITEBYTECODE \
		$(VENV)/bin/pytest -n $${PYTEST_WORKERS:-2} -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format --check . || true

clean:
	rm -rf $(VENV) instance/.migrated $(COMPILED)
