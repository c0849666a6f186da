# Two commands for a fresh Debian machine: `make demo` and `make test`.
SCALE ?= 0.2
.PHONY: setup demo test bench lock stack-up stack-down

setup:            ## packages, services, database, venv, Airflow home, sample (idempotent)
	bash bin/setup

demo: setup       ## load the bundled sample with `airflow dags test`, print the per-level table
	bin/demo

test: setup       ## the whole test suite against the real services
	bin/test -q

bench: setup      ## benchmark vs ogr2ogr / naive / floor at SCALE (results in bench/results/)
	.venv/bin/python bench/run.py --scale $(SCALE) $(BENCH_ARGS)

stack-up: setup   ## CeleryExecutor stack: api-server, scheduler, dag-processor, triggerer, 2 workers, Flower (docs/stack.md)
	bin/stack up

stack-down:       ## stop what stack-up started
	bin/stack down

lock:             ## recompile requirements.txt from requirements.in (pins everything)
	.venv/bin/uv pip compile requirements.in -o requirements.txt --python-version 3.11 --no-header -q
