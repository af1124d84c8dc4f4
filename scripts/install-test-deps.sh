#!/usr/bin/env bash
# Installs what `make test` needs beyond the Rust toolchain: the real BitTorrent clients and tools the
# integration tests run against over loopback. Idempotent: installs only what is missing.
# Needs root for apt-get (CI runs as root); without root it says what is missing and fails.
set -euo pipefail
pkgs=(opentracker python3-libtorrent transmission-daemon transmission-cli aria2 mktorrent socat)
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=sudo
  else
    echo "install-test-deps: missing packages: ${missing[*]} (run as root or install them)" >&2
    exit 1
  fi
else
  SUDO=
fi
echo "install-test-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
