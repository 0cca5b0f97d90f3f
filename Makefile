# The front door: thin on purpose. Everything real lives in Package.swift, scripts/ and bench/.
SWIFT ?= swift
PREFIX ?= /usr/local
export LANG ?= C.UTF-8

.PHONY: run test bench chaos soak fuzz sanitize lint install build release order clean examples

# QUEUE=1 builds the PostgreSQL queue in (the PostgresQueue trait, docs/queue.md): postgres-nio
# adds minutes to a first build, so `make run` leaves it out unless asked.
TRAITS = $(if $(filter 1,$(QUEUE)),--traits PostgresQueue,)

build:
	scripts/ensure-deps build
	$(SWIFT) build --product pooltop $(TRAITS)

## make run: build, then start pooltop: the console hosting the bundled demo pool (QUEUE=1: with the queue).
run: build
	.build/debug/pooltop

## make test: unit tests and integration tests with real processes; then, built with the
## PostgresQueue trait, the PostgreSQL queue's tests against a throw-away cluster
## (scripts/with-postgres) that is stopped and removed afterwards.
test:
	scripts/ensure-deps test
	$(SWIFT) build --build-tests
	# Post-mortems of the tests' many pools go to a throw-away state directory, not the user's.
	rm -rf .build/test-state
	XDG_STATE_HOME=$(CURDIR)/.build/test-state $(SWIFT) test --skip-build --disable-xctest
	# The queue's build links postgres-nio and BoringSSL into every binary, which makes workers
	# slower to start and eu-stack slower to read them: the suite above runs without it, and
	# the queue's tests (they keep both cores busy for a minute) on their own.
	$(SWIFT) build --build-tests --traits PostgresQueue
	XDG_STATE_HOME=$(CURDIR)/.build/test-state scripts/with-postgres \
		$(SWIFT) test --skip-build --disable-xctest --traits PostgresQueue --filter 'QueueProcessTests|PoolQueueTests|QueueDocumentationTests'

# Release binaries link the Swift runtime and Foundation statically: a worker then starts in
# about half the time (see docs/decisions/0005-static-stdlib-for-release.md). Every Swift
# module, dependencies included, puts each function in a section of its own, so that the
# linker can pack the ones a worker runs together (scripts/link/symbol-order.txt, decision 0022).
RELEASE_FLAGS = -c release --static-swift-stdlib -Xswiftc -Xfrontend -Xswiftc -function-sections

## make bench: release build, then the benchmarks, printed as JSON lines (docs/benchmarks.md).
bench:
	scripts/ensure-deps bench
	$(SWIFT) build $(RELEASE_FLAGS) --product PoolBench
	$(SWIFT) build $(RELEASE_FLAGS) --product pooltop
	cc -O2 -o .build/pingpong-floor bench/floor/pingpong.c
	@# A user's Hummingbird app (Examples/HelloHummingbird, its own package) for the http_user_hummingbird
	@# figures: built only when the http figures run, since Hummingbird adds minutes to a first build.
	if [ -z "$$POOLBENCH_ONLY" ] || echo "$$POOLBENCH_ONLY" | grep -qE "http|hummingbird"; then \
	  cd Examples/HelloHummingbird && $(SWIFT) build $(RELEASE_FLAGS); \
	fi
	XDG_STATE_HOME=$(CURDIR)/.build/bench-state POOLBENCH_FLOOR_BIN=.build/pingpong-floor POOLBENCH_POOLTOP=.build/release/pooltop \
	  POOLBENCH_HUMMINGBIRD_BIN=Examples/HelloHummingbird/.build/release/HelloHummingbird .build/release/PoolBench
	@# The PostgreSQL queue: a pooltop with the trait, built apart (--scratch-path) so the
	@# binaries above stay as users of `make run` get them; a throw-away cluster; procrastinate beside it.
	if [ -z "$$POOLBENCH_ONLY" ] || echo ",$$POOLBENCH_ONLY," | grep -q queue; then \
	  $(SWIFT) build $(RELEASE_FLAGS) --traits PostgresQueue --product pooltop --scratch-path .build/queue \
	  && XDG_STATE_HOME=$(CURDIR)/.build/bench-state POOLBENCH_QUEUE_POOLTOP=.build/queue/release/pooltop \
	     scripts/with-postgres python3 bench/queue/queue_bench.py; \
	fi

## make chaos: the fault drill (docs/reliability.md): random SIGKILLs under load for CHAOS_SECONDS
## (default 30), a crash loop and a SIGKILLed watcher; one summary line each, exit 1 on a failed check.
chaos:
	scripts/ensure-deps bench
	$(SWIFT) build $(RELEASE_FLAGS) --product PoolBench
	.build/release/PoolBench chaos

## make soak: SOAK_SECONDS (default 600) of jobs and HTTP with a scale, a rolling or a soft restart
## every 10 s: no failed request or job, no descriptor growth, watcher RSS growth under 5 %.
soak:
	scripts/ensure-deps bench
	$(SWIFT) build $(RELEASE_FLAGS) --product PoolBench
	.build/release/PoolBench soak

## make fuzz (about 50 min): libFuzzer on the control request parser, job frames, the configuration loader,
## shared-memory reading, control frames and the demo reactor's HTTP request reader, FUZZ_RUNS inputs each (default 1,000,000); docs/reliability.md, "Fuzzing".
## POOLTOP_FUZZ=1 adds the fuzzer binary to the package; the toolchain's lld links it.
FUZZ_FLAGS = -c release --scratch-path .build-fuzz --sanitize=address -Xswiftc -sanitize=fuzzer \
	-Xcc -fsanitize=fuzzer-no-link -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld
fuzz:
	POOLTOP_FUZZ=1 $(SWIFT) build $(FUZZ_FLAGS) --product PoolFuzz
	scripts/fuzz

## make examples: builds Examples/WordsAPI and Examples/HelloHummingbird (each its own binary over
## PoolTopCLI) and smoke-tests them: HTTP through their reactors (and WordsAPI's job group), their
## own status, scale, restarts under keep-alive load (HelloHummingbird) and stop.
examples:
	scripts/ensure-deps test
	scripts/examples

## make sanitize: the test suite under AddressSanitizer, then ThreadSanitizer (separate build folders).
## SWIFT_BACKTRACE=enable=no: the Swift runtime's crash handler, in workers the tests crash on
## purpose, reads memory ASan reports as unknown-crash (docs/reliability.md, fault drills).
sanitize:
	scripts/ensure-deps test
	$(SWIFT) build --build-tests --sanitize=address --scratch-path .build-asan
	SWIFT_BACKTRACE=enable=no $(SWIFT) test --skip-build --disable-xctest --sanitize=address --scratch-path .build-asan
	$(SWIFT) build --build-tests --sanitize=thread --scratch-path .build-tsan
	SWIFT_BACKTRACE=enable=no $(SWIFT) test --skip-build --disable-xctest --sanitize=thread --scratch-path .build-tsan

## make lint: a clean debug build of everything, tests included, must print no warning.
lint:
	mkdir -p .build
	$(SWIFT) build --build-tests --traits PostgresQueue 2>&1 | tee .build/lint.log
	@! grep -E '^/.*warning:' .build/lint.log

release:
	$(SWIFT) build $(RELEASE_FLAGS) --product pooltop

## make order: rewrites scripts/link/symbol-order.txt from callgrind runs of a worker and a watcher (needs valgrind).
order: release
	scripts/link/order-symbols .build/release/pooltop

## make install: the release binary into $(PREFIX)/bin.
install: release
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 .build/release/pooltop $(DESTDIR)$(PREFIX)/bin/pooltop
	install -d $(DESTDIR)$(PREFIX)/share/pooltop/themes
	install -m 0644 themes/*.theme $(DESTDIR)$(PREFIX)/share/pooltop/themes/

clean:
	rm -rf .build
