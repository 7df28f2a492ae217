# nova-host — the two commands a fresh machine needs:
#   make demo   build host and drivers, install drivers into drivers/, run examples/hello.plan.json
#   make test   run every test (starting the real servers they need)
SWIFT       ?= swift
CC          ?= cc
BIN         := $(shell $(SWIFT) build --show-bin-path 2>/dev/null)
NOVA        := $(BIN)/nova-host
DRIVERS_DIR := drivers
ABI_INCLUDE := Sources/DriverABI/include
SWIFT_DRIVERS := text http postgres graphql shell mcp_proxy

.PHONY: all deps test-deps build drivers demo test test-swift test-install install bench clean help release image
PREFIX      ?= /usr/local

all: drivers

help:
	@echo "make demo    build everything, install drivers into $(DRIVERS_DIR)/, run examples/hello.plan.json"
	@echo "make test    run every test (installs PostgreSQL etc. if missing)"
	@echo "make drivers build host + drivers and install the .so files into $(DRIVERS_DIR)/"
	@echo "make bench   release build and benchmarks"
	@echo "make install PREFIX=/usr/local: nova-host and nova-sandbox into PREFIX/bin, drivers into"
	@echo "             PREFIX/lib/nova-host/drivers, libNovaDependencies.so into PREFIX/lib/nova-host,"
	@echo "             the default policy and driver settings into"
	@echo "             PREFIX/share/nova-host, the driver header into PREFIX/include"
	@echo "make release release build of nova-host and the Swift drivers (what the image ships)"
	@echo "make image   the container image nova-host:local from the release build, without a base image"

deps:
	@scripts/install-deps.sh build

test-deps:
	@scripts/install-deps.sh test

build: deps
	$(SWIFT) build

# Install drivers: Swift drivers from the build, the C example built against the header alone.
drivers: build
	@mkdir -p $(DRIVERS_DIR)
	@for d in $(SWIFT_DRIVERS); do install -m 0644 $(BIN)/libnova_$$d.so $(DRIVERS_DIR)/libnova_$$d.so; done
	$(MAKE) -s -C Sources/Sandbox
	$(MAKE) -s -C examples/drivers/c-echo OUT=$(CURDIR)/$(DRIVERS_DIR)/libnova_echo.so ABI_INCLUDE=$(CURDIR)/$(ABI_INCLUDE)
	@chmod 0644 $(DRIVERS_DIR)/*.so
	@echo "drivers installed in $(DRIVERS_DIR)/:"; ls -1 $(DRIVERS_DIR)/*.so

demo: drivers
	@echo "== nova-host drivers list"
	@$(NOVA) drivers list
	@echo "== nova-host run examples/hello.plan.json --input who=nova"
	@$(NOVA) run examples/hello.plan.json --input who=nova

# An installed nova-host finds its drivers and policy from any directory (HostPaths.resolve).
install: drivers
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/nova-host/drivers $(DESTDIR)$(PREFIX)/share/nova-host $(DESTDIR)$(PREFIX)/include
	install -m 0755 $(NOVA) $(DESTDIR)$(PREFIX)/bin/nova-host
	# The third-party Swift packages, linked once (Packages/NovaDependencies): found by the host's
	# RUNPATH $$ORIGIN/../lib/nova-host and the drivers' $$ORIGIN/..
	install -m 0755 $(BIN)/libNovaDependencies.so $(DESTDIR)$(PREFIX)/lib/nova-host/libNovaDependencies.so
	install -m 0755 Sources/Sandbox/build/nova-sandbox $(DESTDIR)$(PREFIX)/bin/nova-sandbox
	# The shell driver looks for its helper in the drivers directory before PATH.
	ln -sf ../../../bin/nova-sandbox $(DESTDIR)$(PREFIX)/lib/nova-host/drivers/nova-sandbox
	install -m 0644 $(DRIVERS_DIR)/*.so $(DESTDIR)$(PREFIX)/lib/nova-host/drivers/
	install -m 0644 configs/policy.default.json $(DESTDIR)$(PREFIX)/share/nova-host/policy.default.json
	sed '/"\$$schema"/d' configs/drivers.json > $(DESTDIR)$(PREFIX)/share/nova-host/drivers.json
	# The host loads each driver from a copy, <drivers>/.gen/<sha256>.so, which it writes on first
	# load unless present: made here, so users who cannot write the drivers directory can load them.
	install -d $(DESTDIR)$(PREFIX)/lib/nova-host/drivers/.gen
	@for f in $(DRIVERS_DIR)/*.so; do install -m 0644 $$f $(DESTDIR)$(PREFIX)/lib/nova-host/drivers/.gen/$$(sha256sum $$f | cut -d' ' -f1).so; done
	install -d $(DESTDIR)$(PREFIX)/share/nova-host/blueprints
	install -m 0644 blueprints/*.yaml $(DESTDIR)$(PREFIX)/share/nova-host/blueprints/
	install -m 0644 $(ABI_INCLUDE)/nova_driver.h $(DESTDIR)$(PREFIX)/include/nova_driver.h
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig
	sed -e 's|@PREFIX@|$(PREFIX)|' -e "s|@VERSION@|$$(sed -n 's/^#define NOVA_ABI_MAJOR //p' $(ABI_INCLUDE)/nova_driver.h).$$(sed -n 's/^#define NOVA_ABI_MINOR //p' $(ABI_INCLUDE)/nova_driver.h)|" \
	  Sources/DriverABI/nova-driver.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/nova-driver.pc
	@echo "installed into $(DESTDIR)$(PREFIX): try  $(PREFIX)/bin/nova-host drivers list"

# `make install` into a temporary prefix, then the installed binary from another directory.
test-install:
	Tests/install/run-install-test.sh

# release: the packaging tests build the image from the release build.
test: test-deps drivers release
	# The driver tests talk to real servers (PostgreSQL 15, GraphQL, HTTP on 127.0.0.1).
	# Each run gets its own TMPDIR, removed afterwards (Tests/with-tmpdir.sh).
	NOVA_BIN_DIR=$(BIN) Tests/with-tmpdir.sh Tests/servers/with-servers.sh $(SWIFT) test --skip ShellTests
	# The shell driver's tests on their own: they hold real sandboxes to step deadlines (8 s),
	# and in the run above the CPU-bound suites (regex, schema) fill the cooperative pool's two
	# threads for long enough that a sandbox could not even start before its deadline.
	NOVA_BIN_DIR=$(BIN) Tests/with-tmpdir.sh $(SWIFT) test --skip-build --filter ShellTests
	# The script suites below each get their own TMPDIR too (their servers' data, Chromium
	# profiles, crash-test directories), removed when the suite ends.
	Tests/with-tmpdir.sh Tests/regex/check-expected.sh
	Tests/with-tmpdir.sh Tests/sandbox/run-battery.sh
	[ "$$(id -u)" != 0 ] || Tests/with-tmpdir.sh Tests/sandbox/run-battery.sh --unprivileged --no-build
	NOVA_HOST_BIN=$(NOVA) Tests/with-tmpdir.sh Tests/server/run-e2e.sh
	# The web dashboard (/ui) in headless Chromium via Selenium: live runs, timeline, CSRF, roles, CSP, HTML validity.
	NOVA_HOST_BIN=$(NOVA) Tests/with-tmpdir.sh Tests/ui/run-ui-tests.sh
	# mcp_proxy against real Python MCP servers (stdio, streamable HTTP; SDK 2.x and 1.x): namespaces,
	# episodes, errors, policy, cancellation, restarts, list_changed, reload, credentials.
	NOVA_HOST_BIN=$(NOVA) Tests/with-tmpdir.sh Tests/mcp_proxy/run-mcp-proxy-tests.sh
	# Every shipped driver through the conformance harness (nova-host drivers test).
	NOVA_HOST_BIN=$(NOVA) Tests/with-tmpdir.sh Tests/servers/with-servers.sh Tests/drivers/run-conformance.sh
	# Workers SIGKILLed under load: every run recorded exactly once (PostgreSQL and SQLite).
	NOVA_HOST_BIN=$(NOVA) Tests/with-tmpdir.sh Tests/servers/with-servers.sh Tests/queue/run-crash-tests.sh
	Tests/with-tmpdir.sh Tests/install/run-install-test.sh
	# The client SDKs (sdk/python, sdk/typescript) against a live server: every method, auth, 429 retry, pagination, SSE.
	NOVA_HOST_BIN=$(NOVA) Tests/with-tmpdir.sh Tests/sdk/run-sdk-tests.sh
	# The image (release build, no base image) in a real dockerd, compose up, the Helm chart against the Kubernetes schemas.
	NOVA_HOST_BIN=$(NOVA) Tests/with-tmpdir.sh Tests/packaging/run-packaging-tests.sh
	# `nova-host init` then `serve --config DIR/nova.json`: the printed key authenticates, none gets 401.
	NOVA_HOST_BIN=$(NOVA) Tests/with-tmpdir.sh Tests/init/run-init-test.sh
	@echo "all test suites passed"

# What the container image ships: one product per command (swift build builds only the last of
# several --product flags); niced, it shares the machine with the debug build's tests.
release: deps
	nice -n 5 $(SWIFT) build -c release --product nova-host
	@for d in $(SWIFT_DRIVERS); do nice -n 5 $(SWIFT) build -c release --product nova_$$d || exit 1; done

# The container image nova-host:local, assembled from the release build (docs/deploy.md).
image: release
	scripts/build-image.py --tag nova-host:local

# The driver benchmark needs the real servers: all of it runs under with-servers.sh.
bench: deps test-deps drivers
	# One product per command: swift build builds only the last of several --product flags.
	$(SWIFT) build -c release --product nova-bench
	$(SWIFT) build -c release --product nova-host
	$(SWIFT) build -c release
	$(MAKE) -s -C examples/drivers/c-echo OUT=$(CURDIR)/.build/release/libnova_echo.so ABI_INCLUDE=$(CURDIR)/$(ABI_INCLUDE)
	$(MAKE) -s -C Sources/Sandbox
	# Python peers (pgqueuer, jsonschema-rs, redis-py) in a virtualenv of their own.
	[ -x .build-bench-venv/bin/python ] || python3 -m venv .build-bench-venv
	.build-bench-venv/bin/pip install -q --disable-pip-version-check -r Benchmarks/queue/requirements.txt
	NOVA_BENCH_PYTHON=$(CURDIR)/.build-bench-venv/bin/python NOVA_BIN_DIR=$$($(SWIFT) build -c release --show-bin-path) \
	  Tests/servers/with-servers.sh $$($(SWIFT) build -c release --show-bin-path)/nova-bench all
	# The message bus beside Redis Streams (redis-server from the test deps, redis-py in the venv).
	@echo "== bus (issue 14): publish → receive → ack beside Redis Streams"
	Tests/servers/with-servers.sh .build-bench-venv/bin/python Benchmarks/bus/bench_bus.py \
	  --nova-host $$($(SWIFT) build -c release --show-bin-path)/nova-host
	# The server: REST and MCP tool calls beside FastMCP (wrk; the release nova-host, drivers/).
	@echo "== server (issue 15): GET /health, POST /tools/echo.echo, MCP tools/call beside FastMCP"
	PYTHON=$(CURDIR)/.build-bench-venv/bin/python NOVA_HOST_BIN=$$($(SWIFT) build -c release --show-bin-path)/nova-host \
	  Benchmarks/server/bench.sh

clean:
	rm -rf .build $(DRIVERS_DIR)/*.so $(DRIVERS_DIR)/.gen
