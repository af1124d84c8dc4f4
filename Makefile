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
	# The daemon with the test-only fault-injection points, for the fault tests.
	$(CARGO) build --release -p swarmd --features fault-injection --target-dir target/fault
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
