# swarmd — build, run, test, bench, install.
CARGO ?= cargo
PREFIX ?= /usr/local
DESTDIR ?=
BINDIR := $(DESTDIR)$(PREFIX)/bin
RELEASE := target/release
FAULT_BIN := $(CURDIR)/target/fault/release/swarmd

.PHONY: all build run test test-deps lint fault-bin fmt unit integration bench soak fuzz fuzz-deps fuzz-smoke install clean

all: build

build:
	$(CARGO) build --release --bin swarmd --bin swarmctl

# Start the daemon with its built-in defaults (XDG directories, control socket, watch directory).
run: build
	$(RELEASE)/swarmd

# Everything CI checks, on the stable toolchain. Its share of fuzzing is the replay of every
# committed seed and regression input through its target's check (crates/swarm-fuzz-checks, a
# workspace member like any other); exploring new inputs is `make fuzz`'s.
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
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml

bench: build
	./scripts/bench.sh

# The churn soak: one daemon, twenty torrents, half an hour of peers that come and vanish, a
# tracker that hangs, liars, torrents removed and added again; RSS and descriptors sampled every
# 10 s (docs/reliability.md). SOAK_SECS for another length.
SOAK_SECS ?= 1800
soak: test-deps build
	SWARM_IT_CHURN_SECS=$(SOAK_SECS) $(CARGO) test -p swarm-integration-tests --test reliability churn_soak -- --ignored --nocapture

# The property tests with many cases, then every libFuzzer target in fuzz/ for FUZZ_SECS
# seconds each (scripts/fuzz.sh; needs the nightly toolchain and cargo-fuzz, which
# scripts/install-fuzz-deps.sh installs). FUZZ_TARGETS picks some targets only.
FUZZ_SECS ?= 60

fuzz: fuzz-deps
	PROPTEST_CASES=100000 $(CARGO) test --release --workspace proptest
	FUZZ_SECS=$(FUZZ_SECS) ./scripts/fuzz.sh

fuzz-deps:
	./scripts/install-fuzz-deps.sh

# Each target for a few seconds, on nightly with AddressSanitizer: the seeds and regressions, and
# a few hundred thousand new inputs. Not part of `make test` (the nightly toolchain, cargo-fuzz
# and the sanitizer build cost CI minutes; the replay test keeps the regression guarantee).
fuzz-smoke: fuzz-deps
	FUZZ_SECS=5 ./scripts/fuzz.sh

# Binaries, the systemd unit (ExecStart follows PREFIX), the sysusers.d entry for the swarmd user,
# and the default config (never overwriting an existing one). Installs what `make build` built and
# compiles nothing: run `make build` as yourself first, then `sudo make install` (a build as root
# would leave root-owned files in target/). systemd reads units and sysusers.d entries under
# /usr/local/lib as well as /usr/lib. Then, as root:
#   systemd-sysusers && systemctl daemon-reload && systemctl enable --now swarmd
UNITDIR := $(DESTDIR)$(PREFIX)/lib/systemd/system
SYSUSERSDIR := $(DESTDIR)$(PREFIX)/lib/sysusers.d
CONFDIR := $(DESTDIR)/etc/swarmd

install:
	@for b in $(RELEASE)/swarmd $(RELEASE)/swarmctl; do \
	  test -x $$b || { echo "make install: $$b is missing: run 'make build' first (as yourself, not root)" >&2; exit 1; }; \
	done
	install -d $(BINDIR) $(UNITDIR) $(SYSUSERSDIR) $(CONFDIR)
	install -m 0755 $(RELEASE)/swarmd $(RELEASE)/swarmctl $(BINDIR)/
	sed 's|/usr/local/bin/swarmd|$(PREFIX)/bin/swarmd|' config/swarmd.service > $(UNITDIR)/swarmd.service
	chmod 0644 $(UNITDIR)/swarmd.service
	install -m 0644 config/swarmd.sysusers $(SYSUSERSDIR)/swarmd.conf
	test -e $(CONFDIR)/swarmd.toml || install -m 0644 config/swarmd.toml $(CONFDIR)/swarmd.toml

clean:
	$(CARGO) clean
