# The two commands a newcomer needs: `make run` and `make test`. Both set up whatever is missing first.
.PHONY: run test setup services-up services-down lint fmt lock

run:
	@scripts/with-services.sh scripts/run.sh

test:
	@scripts/with-services.sh scripts/test.sh $(ARGS)

setup:
	@scripts/setup.sh

services-up:
	@scripts/redis.sh start
	@scripts/postgres.sh start

services-down:
	@scripts/redis.sh stop
	@scripts/postgres.sh stop

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy .

fmt:
	.venv/bin/ruff check --fix . && .venv/bin/ruff format .

# Re-pin constraints.txt from the current virtualenv after changing dependencies in pyproject.toml.
lock:
	.venv/bin/pip freeze --exclude-editable | grep -v '^-e ' > constraints.txt
