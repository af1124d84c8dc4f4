#!/usr/bin/env bash
# Runs every libFuzzer target in fuzz/ (or those named in FUZZ_TARGETS) for FUZZ_SECS seconds
# each (default 60), on the nightly toolchain, with debug assertions (integer overflow is a bug
# in a parser). `make fuzz` runs it with the default; `make fuzz-smoke` with FUZZ_SECS=5.
#
# Corpora: libFuzzer adds what it finds to the first directory it is given, so that is a scratch
# directory under fuzz/target/; the committed seeds (fuzz/corpus/<target>) and the inputs that
# once crashed (fuzz/regressions/<target>) come after it, read-only, and are replayed on every run
# (`make test` replays them too, on stable: crates/swarm-fuzz-checks/tests/replay.rs).
# A crash leaves its input in fuzz/artifacts/<target>/; the other targets still run, and the
# script fails at the end. The last stats line of each run (execs, cov, ft, corpus) is printed
# as a table.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SECS:-60}
targets=${FUZZ_TARGETS:-$(cargo +nightly fuzz list --fuzz-dir fuzz)}
logs=fuzz/target/logs
mkdir -p "$logs"
# One build for all of them (cargo fuzz build takes one target or none).
if [ -z "${FUZZ_TARGETS:-}" ]; then
  cargo +nightly fuzz build --fuzz-dir fuzz --debug-assertions
fi
failed=()
summary=()
for t in $targets; do
  scratch=fuzz/target/corpus/$t
  mkdir -p "$scratch" "fuzz/corpus/$t" "fuzz/regressions/$t"
  echo "fuzz: $t for ${secs}s"
  if ! cargo +nightly fuzz run --fuzz-dir fuzz --debug-assertions "$t" \
      "$scratch" "fuzz/corpus/$t" "fuzz/regressions/$t" \
      -- -max_total_time="$secs" -timeout=10 -print_final_stats=1 >"$logs/$t.log" 2>&1; then
    failed+=("$t")
    tail -n 40 "$logs/$t.log" >&2
  fi
  # The final status line: "#<execs> DONE cov: <n> ft: <n> corp: <units>/<size> ...".
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$logs/$t.log" | tail -n 1 || true)
  execs=$(sed -nE 's/^stat::number_of_executed_units: ([0-9]+)/\1/p' "$logs/$t.log" | tail -n 1)
  cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$done_line")
  ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$done_line")
  corp=$(sed -nE 's/.* corp: ([0-9]+)\/.*/\1/p' <<<"$done_line")
  summary+=("$(printf '%-16s %6s %12s %8s %8s %8s' "$t" "$secs" "${execs:--}" "${cov:--}" "${ft:--}" "${corp:--}")")
done
printf '%-16s %6s %12s %8s %8s %8s\n' target secs execs cov ft corpus
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz: crashes in: ${failed[*]} (inputs in fuzz/artifacts/, logs in $logs/)" >&2
  exit 1
fi
