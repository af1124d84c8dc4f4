# swarmd — build, run, test, bench, install.
CARGO ?= cargo
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR := $(DESTDIR)$(PREFIX)/bin
RELEASE := target/release

.PHONY: all build run test test-deps lint fmt unit integration bench fuzz install clean

all: build

build:
	$(CARGO) build --release --bin swarmd --bin swarmctl

# Start the daemon with its built-in defaults (XDG directories, control socket, watch directory).
run: build
	$(RELEASE)/swarmd

# Everything CI checks.
test: test-deps lint
	$(CARGO) build --release --bin swarmd --bin swarmctl
	if $(CARGO) nextest --version >/dev/null 2>&1; then \
	  $(CARGO) nextest run --workspace --no-fail-fast; \
	else \
	  $(CARGO) test --workspace --no-fail-fast; \
	fi

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

install: build
	install -d $(BINDIR) $(DESTDIR)/lib/systemd/system $(DESTDIR)/etc/swarmd
	install -m 0755 $(RELEASE)/swarmd $(RELEASE)/swarmctl $(BINDIR)/
	install -m 0644 config/swarmd.service $(DESTDIR)/lib/systemd/system/swarmd.service
	test -e $(DESTDIR)/etc/swarmd/swarmd.toml || install -m 0644 config/swarmd.toml $(DESTDIR)/etc/swarmd/swarmd.toml

clean:
	$(CARGO) clean
