#!/usr/bin/env bash
# Fuzzes every target briefly and fails on any crash, timeout or leak.
#
#   fuzz/smoke.sh [SECONDS]      (default 20 s per target)
#
# Every target cargo-fuzz lists is run (a new one is included without
# editing this file), one after the other, each in one process (-jobs is not
# used: the machine is shared), from its whole committed corpus
# (seed-*, scenario-*, lenient-*). Five targets at 20 s keep CI's fuzzing
# under two minutes.
#
# With a nightly toolchain the targets run under AddressSanitizer
# (cargo +nightly fuzz run); without one, on stable with no sanitizer
# (cargo fuzz run -s none). The working corpus is a temporary copy of the
# committed seeds, so a run never writes into fuzz/corpus; a crashing input is
# kept by libFuzzer in fuzz/artifacts/<target>/ (ignored by git) and its path
# printed. Reproduce one with: cargo +nightly fuzz run <target> <file>.
set -euo pipefail

seconds="${1:-20}"
case "$seconds" in
  '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac

fuzz_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$fuzz_dir"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "smoke: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi

if rustup toolchain list 2>/dev/null | grep -q nightly; then
  toolchain=(+nightly)
  sanitizer=()
  mode="nightly, AddressSanitizer"
else
  toolchain=()
  sanitizer=(-s none)
  mode="stable, no sanitizer"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "smoke: building targets ($mode)" >&2
cargo "${toolchain[@]}" fuzz build "${sanitizer[@]}" >&2
mapfile -t targets < <(cargo "${toolchain[@]}" fuzz list)

failed=()
summary=()
for t in "${targets[@]}"; do
  mkdir -p "$work/corpus/$t"
  if compgen -G "corpus/$t/*" >/dev/null; then
    cp corpus/"$t"/* "$work/corpus/$t"/
  fi
  log="$work/$t.log"
  echo "smoke: fuzzing $t for ${seconds}s" >&2
  status=0
  cargo "${toolchain[@]}" fuzz run "${sanitizer[@]}" "$t" "$work/corpus/$t" -- \
    -max_total_time="$seconds" -timeout=10 -dict="$fuzz_dir/mqtt.dict" \
    -print_final_stats=1 >"$log" 2>&1 || status=$?
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
  cov="$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)"
  if [ "$status" -ne 0 ]; then
    failed+=("$t")
    echo "smoke: $t FAILED (exit $status); the end of its log:" >&2
    tail -n 60 "$log" >&2
  fi
  summary+=("$(printf '%-13s %-6s execs=%-10s execs/s=%-8s %s' "$t" \
    "$([ "$status" -eq 0 ] && echo ok || echo CRASH)" "${runs:-?}" "${rate:-?}" "$cov")")
done

echo "smoke: ${seconds}s per target ($mode)"
printf '  %s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "smoke: crashes in: ${failed[*]} (inputs in $fuzz_dir/artifacts/)" >&2
  exit 1
fi
