# swarmd — build, run, test, bench, install.
CARGO ?= cargo
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR := $(DESTDIR)$(PREFIX)/bin
RELEASE := target/release
FAULT_BIN := $(CURDIR)/target/fault/release/swarmd

.PHONY: all build run test test-deps lint fault-bin fmt unit integration bench fuzz install clean

all: build

build:
	$(CARGO) build --release --bin swarmd --bin swarmctl

# Start the daemon with its built-in defaults (XDG directories, control socket, watch directory).
run: build
	$(RELEASE)/swarmd

# Everything CI checks.
test: test-deps lint fault-bin
	$(CARGO) build --release --bin swarmd --bin swarmctl
	if $(CARGO) nextest --version >/dev/null 2>&1; then \
	  SWARMD_FAULT_BIN=$(FAULT_BIN) $(CARGO) nextest run --workspace --no-fail-fast; \
	else \
	  SWARMD_FAULT_BIN=$(FAULT_BIN) $(CARGO) test --workspace --no-fail-fast; \
	fi

# The daemon with the test-only fault-injection points, for the fault tests. Built in the same
# target directory (only swarm-engine and swarmd are compiled again, with the feature), copied
# aside, and built first: the plain `build` after it puts the normal daemon back in place.
fault-bin:
	$(CARGO) build --release -p swarmd --bin swarmd --features fault-injection
	mkdir -p $(dir $(FAULT_BIN))
	cp $(RELEASE)/swarmd $(FAULT_BIN).tmp && mv $(FAULT_BIN).tmp $(FAULT_BIN)

test-deps:
	./scripts/install-test-deps.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

bench: build
	./scripts/bench.sh

fuzz:
	PROPTEST_CASES=100000 $(CARGO) test --release --workspace proptest

# Binaries, the systemd unit (ExecStart follows PREFIX), the sysusers.d entry for the swarmd user,
# and the default config (never overwriting an existing one). Then, as root:
#   systemd-sysusers && systemctl daemon-reload && systemctl enable --now swarmd
install: build
	install -d $(BINDIR) $(DESTDIR)/lib/systemd/system $(DESTDIR)/usr/lib/sysusers.d $(DESTDIR)/etc/swarmd
	install -m 0755 $(RELEASE)/swarmd $(RELEASE)/swarmctl $(BINDIR)/
	sed 's|/usr/local/bin/swarmd|$(PREFIX)/bin/swarmd|' config/swarmd.service > $(DESTDIR)/lib/systemd/system/swarmd.service
	chmod 0644 $(DESTDIR)/lib/systemd/system/swarmd.service
	install -m 0644 config/swarmd.sysusers $(DESTDIR)/usr/lib/sysusers.d/swarmd.conf
	test -e $(DESTDIR)/etc/swarmd/swarmd.toml || install -m 0644 config/swarmd.toml $(DESTDIR)/etc/swarmd/swarmd.toml

clean:
	$(CARGO) clean
