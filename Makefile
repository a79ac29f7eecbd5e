# Build, run and test the cache module. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
# The virtual environment that scripts/setup.sh makes; first on PATH for every recipe.
VENV := $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)
PYTHON ?= python3
MODULE := $(CURDIR)/target/release/librediscache.so
RUN_PORT ?= 6390

.PHONY: all setup build run test test-rust test-integration test-clients test-redis-suite bench bench-near bench-tiny profile examples fuzz clean

all: build

setup:
	@bash scripts/setup.sh

build:
	cargo build --release

# Start a local server with the module on port 6390 (never 6379, Debian's service).
# The config is redis.conf.example; the module is passed on the command line, which Redis
# appends to the config file, so the cache.* lines of the file apply to it.
run: setup build
	@echo "connect with: redis-cli -p $(RUN_PORT)"
	redis-server redis.conf.example --port $(RUN_PORT) --loadmodule $(MODULE)

test-rust:
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings
	python3 scripts/check_structure.py
	cargo test

# The integration suite against Debian's redis-server, then against Valkey when one is found.
# Both runs happen even if the first fails, so one `make test` shows both results.
test-integration: build
	@status=0; \
	echo "== integration tests against $$(command -v redis-server)"; \
	$(PYTHON) -m pytest -q tests/ || status=1; \
	valkey=$$($(PYTHON) scripts/find_valkey.py) || valkey=""; \
	if [ -n "$$valkey" ]; then \
		echo "== integration tests again against $$valkey"; \
		REDIS_SERVER="$$valkey" $(PYTHON) -m pytest -q tests/ || status=1; \
	else \
		echo "== no valkey-server found: skipping the Valkey run"; \
	fi; \
	exit $$status

# The client packages (clients/<lang>/test.sh each: its own tests and the frameworks' suites).
# Every package runs even if one fails.
test-clients: build
	@status=0; \
	for t in clients/*/test.sh; do \
		[ -f "$$t" ] || continue; \
		echo "== client tests: $$t"; \
		CACHE_MODULE=$(MODULE) bash "$$t" || status=1; \
	done; \
	exit $$status

test: setup
	$(MAKE) test-rust
	$(MAKE) test-integration
	$(MAKE) examples
	$(MAKE) test-clients

# The benchmark suite (scripts/bench/README.md): starts its own servers, prints one table with
# every figure and its goal, writes scripts/bench/results.json. Full sizes take several minutes;
# bench-tiny (< 60 s) only proves the suite works. BENCH_ARGS="--only tag" runs one section;
# BENCH_ARGS="--module /other/tree/target/release/librediscache.so" runs it against another build.
BENCH_ARGS ?=
bench: build
	$(PYTHON) scripts/bench/run.py --size full $(BENCH_ARGS)
	$(MAKE) bench-near

# The near cache (clients/node NearCache) against plain GETORMARK: requests per second of a
# read-heavy loop and the staleness window (clients/node/bench/near-bench.js).
bench-near: build
	cd clients/node && CACHE_MODULE=$(MODULE) node bench/near-bench.js 10

bench-tiny: build
	$(PYTHON) scripts/bench/run.py --size tiny $(BENCH_ARGS)

# Instructions per command inside the server's call(), under callgrind (repeatable on a busy
# machine): the module's paths beside GET / SET EX and the module-API floor.
profile: build
	$(PYTHON) scripts/profile.py

# The single-server examples, then the cluster ones (a local 3-primary cluster), both even if
# the first fails.
examples: build
	@status=0; \
	if [ -f examples/run.sh ]; then bash examples/run.sh || status=1; else echo "no examples/run.sh yet"; fi; \
	echo "== cluster examples"; bash examples/cluster/run.sh || status=1; \
	exit $$status

# Redis's own test suite (Debian's source package of the installed redis-server), the units of
# scripts/redis_suite.sh once without and once with the module: fails on any test that fails
# only with it. Not part of `make test`: the core set takes about 13 minutes for both runs,
# SUITE_SET=full about 45 (README, Guarantees).
# SUITE_CLIENTS=2 runs two test clients (the default); SUITE_UNITS="unit/dump ..." replaces the set.
test-redis-suite: build
	bash scripts/redis_suite.sh all

# The cargo-fuzz targets of fuzz/, FUZZ_SECONDS each (default 60); not part of `make test`.
fuzz:
	bash scripts/fuzz.sh

clean:
	cargo clean
