#!/usr/bin/env bash
# Installs what `make test` needs beyond the Rust toolchain: the real BitTorrent clients and tools the
# integration tests run against over loopback. Idempotent: installs only what is missing.
# Needs root for apt-get (CI runs as root); without root it says what is missing and fails.
set -euo pipefail
pkgs=(opentracker python3-libtorrent python3-venv transmission-daemon transmission-cli aria2 mktorrent socat
  iproute2 chromium chromium-driver prometheus systemd)
# chromium + chromium-driver: the HTTP RPC's web client test drives Debian's transmission web client
# (transmission-common, pulled in by transmission-daemon) in headless Chromium through Selenium.
# systemd: `systemd-analyze verify` of the unit file (crates/swarmd/src/tests/unit_file.rs).
# iproute2: the swarm lab (ip netns, tc).
# prometheus: the metrics test starts a real Prometheus on loopback that scrapes swarmd.
# The PyPI `transmission-rpc` library (what Sonarr-like Python tools and Home Assistant use) and
# `selenium` (drives chromium-driver for the web client test) for the HTTP RPC tests, in a venv
# of the repository's own (target/test-venv) over Debian's python3, whose site packages
# (libtorrent) it sees. Debian's python refuses `pip install --user` (PEP 668).
venv_for_rpc() {
  local here venv
  here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  venv="$here/target/test-venv"
  if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import transmission_rpc, selenium' 2>/dev/null; then
    return 0
  fi
  echo "install-test-deps: installing transmission-rpc and selenium into $venv"
  [ -x "$venv/bin/python" ] || /usr/bin/python3 -m venv --system-site-packages "$venv"
  "$venv/bin/pip" install -q 'transmission-rpc>=7,<8' 'selenium>=4.10,<5'
}

missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  venv_for_rpc
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
venv_for_rpc
