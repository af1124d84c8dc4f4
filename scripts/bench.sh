#!/usr/bin/env bash
# `make bench`: builds release, runs the criterion microbenchmarks (short measurement times) and
# the loopback benchmarks against real clients (integration-tests/examples/swarm_bench), and
# writes the results into docs/benchmarks.md (between the <!-- bench:NAME --> markers).
#
# Installs nothing. Required: cargo, opentracker, /usr/bin/python3 with libtorrent
# (scripts/install-test-deps.sh installs them). Optional: aria2c, mktorrent, transmission-daemon,
# rqbit (~/.cargo/bin/rqbit or $RQBIT_BIN); a missing optional client is reported as
# "not installed" in the results.
#
# Environment:
#   BENCH_QUICK=1        1 run per client, 256 MiB payloads, idle CPU over 20 s (default: 5 runs,
#                        1 GiB, 60 s)
#   BENCH_RUNS=N         runs per client (overrides the above)
#   BENCH_SIZE=SIZE      payload size, e.g. 512M (overrides the above)
#   BENCH_SCENARIOS="…"  swarm_bench scenarios [download encrypted utp-download upload many-sources scale]; "" = none
#   BENCH_MICRO=0        skip the criterion benchmarks
#   BENCH_DOCS=0         print only, do not touch docs/benchmarks.md
#   BENCH_LABEL=TEXT     appended to every section title
#   BENCH_TRANSMISSION=1 scale: also measure transmission-daemon with the same 1 000 torrents
#   BENCH_LAB="…"        swarm lab scenarios [lab] (= lab-flash lab-mixed lab-late
#                        lab-seed-leaves; needs root: network namespaces); "" = none
#   BENCH_LAB_RUNS=N     runs per lab row [3; 1 with BENCH_QUICK=1]
#   BENCH_LAB_SIZES=LIST lab payloads [16M,64M; 16M with BENCH_QUICK=1]
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO=${CARGO:-cargo}
quick=${BENCH_QUICK:-0}
if [ "$quick" = 1 ]; then
  runs=${BENCH_RUNS:-1}; size=${BENCH_SIZE:-256M}; idle=20
  lab_runs=${BENCH_LAB_RUNS:-1}; lab_sizes=${BENCH_LAB_SIZES:-16M}
else
  runs=${BENCH_RUNS:-5}; size=${BENCH_SIZE:-1G}; idle=60
  lab_runs=${BENCH_LAB_RUNS:-3}; lab_sizes=${BENCH_LAB_SIZES:-16M,64M}
fi
lab=${BENCH_LAB-lab}
scenarios=${BENCH_SCENARIOS-download encrypted utp-download upload many-sources scale}
micro=${BENCH_MICRO:-1}

# --- tools ------------------------------------------------------------------------------------
missing_required=()
have() { command -v "$1" >/dev/null 2>&1; }
have "$CARGO" || missing_required+=("cargo (https://rustup.rs)")
have opentracker || missing_required+=("opentracker (Debian package opentracker)")
if ! /usr/bin/python3 -c 'import libtorrent' >/dev/null 2>&1; then
  missing_required+=("python3-libtorrent for /usr/bin/python3 (Debian package python3-libtorrent)")
fi
if [ ${#missing_required[@]} -gt 0 ]; then
  echo "bench: missing required tools:" >&2
  printf '  - %s\n' "${missing_required[@]}" >&2
  echo "bench: install them (scripts/install-test-deps.sh does) and run again; nothing was installed." >&2
  exit 1
fi
rqbit=${RQBIT_BIN:-$HOME/.cargo/bin/rqbit}
[ -x "$rqbit" ] || rqbit=$(command -v rqbit || true)
for t in aria2c mktorrent transmission-daemon; do
  have "$t" || echo "bench: optional: $t not installed (its numbers will be missing)" >&2
done
if [ -n "$rqbit" ] && [ -x "$rqbit" ]; then
  export RQBIT_BIN=$rqbit
else
  echo "bench: optional: rqbit not installed (cargo install --locked rqbit); reported as not installed" >&2
fi

# --- build ------------------------------------------------------------------------------------
echo "bench: building release (swarmd, swarmctl, swarm_bench)" >&2
"$CARGO" build --release --bin swarmd --bin swarmctl
"$CARGO" build --release -p swarm-integration-tests --example swarm_bench
bench_bin=${CARGO_TARGET_DIR:-target}/release/examples/swarm_bench

doc_args=()
[ "${BENCH_DOCS:-1}" = 0 ] && doc_args+=(--no-docs)
[ -n "${BENCH_LABEL:-}" ] && doc_args+=(--label "$BENCH_LABEL")

# --- microbenchmarks --------------------------------------------------------------------------
if [ "$micro" != 0 ]; then
  since=$(date +%s)
  crit=(-- --warm-up-time 1 --measurement-time 3)
  echo "bench: criterion (short measurement times)" >&2
  "$CARGO" bench -p swarm-wire --bench wire_decode --bench mse_rc4 "${crit[@]}"
  "$CARGO" bench -p swarm-engine --bench picker --bench hashing --bench resume --bench token_bucket --bench blocklist "${crit[@]}"
  "$CARGO" bench -p swarm-engine --features fast-sha1 --bench hashing "${crit[@]}"
  SWARM_BENCH_SINCE=$since "$bench_bin" micro "${doc_args[@]}" \
    --command "scripts/bench.sh: cargo bench -p swarm-wire --bench wire_decode --bench mse_rc4; cargo bench -p swarm-engine --bench picker --bench hashing --bench resume --bench token_bucket --bench blocklist; the same with --features fast-sha1 --bench hashing; all ${crit[*]}"
fi

# --- loopback benchmarks against real clients --------------------------------------------------
if [ -n "$scenarios" ]; then
  extra=()
  [ "${BENCH_TRANSMISSION:-0}" = 1 ] && extra+=(--scale-transmission)
  args="$scenarios --runs $runs --size $size --idle-secs $idle ${extra[*]}"
  cmd="BENCH_QUICK=$quick scripts/bench.sh, i.e. cargo run --release -p swarm-integration-tests --example swarm_bench -- ${args% }"
  # shellcheck disable=SC2086 # a word list
  "$bench_bin" $args --command "$cmd" "${doc_args[@]}"
fi

# --- the swarm lab: capped uplinks, one network namespace per host ----------------------------
if [ -n "$lab" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "bench: the swarm lab needs root (network namespaces); skipped: $lab" >&2
  else
    args="$lab --runs $lab_runs --lab-sizes $lab_sizes"
    cmd="BENCH_QUICK=$quick scripts/bench.sh, i.e. cargo run --release -p swarm-integration-tests --example swarm_bench -- $args"
    # shellcheck disable=SC2086 # a word list
    "$bench_bin" $args --command "$cmd" "${doc_args[@]}"
  fi
fi
