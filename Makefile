# netprobe_exporter — the README's commands.
#   make run    build (release) and serve /metrics on 127.0.0.1:9469 with config/netprobe.yml (loopback only)
#   make test   unit tests, the deploy/ checks, then the end-to-end and lab tests (the lab ones need root)
#   make bench  benchmarks: printed figures, never pass/fail (BENCH_ARGS go to ping_bench.py,
#               SCRAPE_BENCH_ARGS to scrape_bench.py, e.g. SCRAPE_BENCH_ARGS=--targets=10000,
#               MCAST_BENCH_ARGS to multicast_bench.py, e.g. MCAST_BENCH_ARGS=--rates=100000,200000)
#   make lint   a warning-free build, swift format on every Swift file, promtool on the shipped rules
#   make fuzz   a million random and mutated inputs through every parser of untrusted bytes

SWIFT      ?= swift
REVISION   := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
RELEASE    := -c release -Xcc -DNETPROBE_REVISION='"$(REVISION)"'
LISTEN     ?= 127.0.0.1:9469
FUZZ_RUNS  ?= 1000000
FUZZ_SEED  ?= 1
BENCH_ARGS ?=
SCRAPE_BENCH_ARGS ?=
MCAST_BENCH_ARGS ?=

.PHONY: all build release run test unit-test e2e-test bench lint fuzz embed clean

all: build

build:
	@scripts/install-deps.sh build
	$(SWIFT) build

release:
	@scripts/install-deps.sh build
	$(SWIFT) build $(RELEASE)

run: release
	.build/release/netprobe_exporter --config.file=config/netprobe.yml --web.listen-address=$(LISTEN)

test:
	@scripts/install-deps.sh test
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build
	python3 Tests/deploy/test_deploy.py --binary .build/debug/netprobe_exporter
	.build/debug/netprobe_fuzz all --runs 20000 --seed $$(date +%s)
	python3 Tests/lab/run.py --binary .build/debug/netprobe_exporter

bench:
	@scripts/install-deps.sh bench
	$(SWIFT) build $(RELEASE)
	cd Benchmarks && $(SWIFT) run -c release netprobe-bench
	python3 Benchmarks/ping_bench.py --netprobe-binary .build/release/netprobe_exporter $(BENCH_ARGS)
	python3 Benchmarks/scrape_bench.py --netprobe-binary .build/release/netprobe_exporter $(SCRAPE_BENCH_ARGS)
	python3 Benchmarks/multicast_bench.py --netprobe-binary .build/release/netprobe_exporter $(MCAST_BENCH_ARGS)

lint:
	@scripts/install-deps.sh build
	mkdir -p .build
	@# SwiftPM repeats no warning for a file it does not recompile: rebuild our own modules.
	rm -rf $(addprefix .build/debug/,NetProbe.build netprobe_exporter.build netprobe_fuzz.build NetProbeTests.build CNetShims.build CCurl.build CTLS.build)
	$(SWIFT) build --build-tests 2>&1 | tee .build/lint.log
	@! grep -E '^/.*(Sources|Tests)/.*: warning:' .build/lint.log || { echo "lint: warnings above"; exit 1; }
	@# The formatting every file keeps (.swift-format): `$(SWIFT) format -i FILE` mends one.
	$(SWIFT) format lint --strict $$(git ls-files '*.swift')
	@if command -v promtool >/dev/null; then promtool check rules deploy/prometheus/netprobe.rules.yml deploy/prometheus/netprobe.alerts.yml; fi

fuzz:
	@scripts/install-deps.sh build
	$(SWIFT) build -c release --product netprobe_fuzz
	.build/release/netprobe_fuzz yaml --runs $(FUZZ_RUNS) --seed $(FUZZ_SEED)
	.build/release/netprobe_fuzz targetfile --runs $(FUZZ_RUNS) --seed $(FUZZ_SEED)
	.build/release/netprobe_fuzz web --runs $(FUZZ_RUNS) --seed $(FUZZ_SEED)
	.build/release/netprobe_fuzz http --runs $(FUZZ_RUNS) --seed $(FUZZ_SEED)
	.build/release/netprobe_fuzz multicast --runs $(FUZZ_RUNS) --seed $(FUZZ_SEED)
	.build/release/netprobe_fuzz querier --runs $(FUZZ_RUNS) --seed $(FUZZ_SEED)
	.build/release/netprobe_fuzz icmp --runs $(FUZZ_RUNS) --seed $(FUZZ_SEED)

embed:
	scripts/embed-default-config.py

clean:
	rm -rf .build Benchmarks/.build
