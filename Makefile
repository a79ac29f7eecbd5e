# Benchmark targets (scripts/bench/README.md). `make bench` runs the full suite
# (several minutes); `make bench-tiny` is the < 60 s smoke run used by tests.
PYTHON ?= python3
BENCH_ARGS ?=

.PHONY: build bench bench-tiny

build:
	cargo build --release

bench: build
	$(PYTHON) scripts/bench/run.py --size full $(BENCH_ARGS)

bench-tiny: build
	$(PYTHON) scripts/bench/run.py --size tiny $(BENCH_ARGS)
