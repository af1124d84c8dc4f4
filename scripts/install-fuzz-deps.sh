#!/usr/bin/env bash
# Installs what the libFuzzer targets in fuzz/ need: a nightly Rust toolchain (cargo fuzz builds
# with -Zsanitizer=address and libFuzzer's coverage flags, which stable does not take) and
# cargo-fuzz from crates.io. Idempotent: installs only what is missing. A nightly that cannot be
# installed is a failure, not a skip: `make fuzz` and `make fuzz-smoke` run the fuzz targets.
# `make test` does not need either (it replays the committed inputs on stable).
set -euo pipefail
if ! rustup toolchain list | grep -q '^nightly'; then
  echo "install-fuzz-deps: installing the nightly toolchain"
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "install-fuzz-deps: installing cargo-fuzz"
  # --locked: the versions cargo-fuzz was released with, not whatever is newest today.
  cargo install --locked cargo-fuzz
fi
