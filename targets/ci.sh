#!/usr/bin/env bash
# targets/ci.sh [NAME…]: the matrix in CI. Installs, starts, runs and stops
# each broker (default: mosquitto aedes amqtt; `all` for the seven), then
# fails when a broker did not start, a case failed outside its broker's
# baseline, a baseline entry is stale (matches no case) or fixed (passes and
# is not marked intermittent), or a case could not run.
#
# Reports: target/reports/targets/NAME.{json,html} (each run) and
# target/reports/matrix.{json,html} (the comparison). Times per broker, in
# seconds, in target/reports/targets/times.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$REPO_DIR"

names=("$@")
[ ${#names[@]} -gt 0 ] || names=(mosquitto aedes amqtt)
[ "${names[*]}" = all ] && names=(mosquitto aedes rabbitmq activemq amqtt rumqttd-v4 rumqttd-v5)

bin=${MQTT_HARNESS:-$REPO_DIR/target/release/mqtt-harness}
if [ ! -x "$bin" ]; then
  cargo build --release --locked --bin mqtt-harness
fi
reports=$REPO_DIR/target/reports
mkdir -p "$reports/targets"
times=$reports/targets/times
: > "$times"
matrix=$STATE_ROOT/ci-matrix.yaml
mkdir -p "$STATE_ROOT"
echo "targets:" > "$matrix"

started=()
stop_all() {
  for n in "${started[@]}"; do
    "$TARGETS_DIR/$n/stop.sh" || echo "targets/ci.sh: stopping $n failed" >&2
  done
}
trap stop_all EXIT

failed_to_start=()
for n in "${names[@]}"; do
  [ -d "$TARGETS_DIR/$n" ] || { echo "targets/ci.sh: no target $n" >&2; exit 2; }
  t0=$SECONDS
  if ! "$TARGETS_DIR/$n/install.sh"; then
    echo "targets/ci.sh: $n: install.sh failed" >&2
    failed_to_start+=("$n (install)")
    continue
  fi
  t1=$SECONDS
  if ! out=$("$TARGETS_DIR/$n/start.sh"); then
    echo "targets/ci.sh: $n: start.sh failed (its log is above)" >&2
    failed_to_start+=("$n (start)")
    continue
  fi
  t2=$SECONDS
  started+=("$n")
  url=$(printf '%s\n' "$out" | sed -n 's/^URL=//p')
  printf '%s install %s start %s\n' "$n" $((t1 - t0)) $((t2 - t1)) | tee -a "$times"
  {
    printf '  - name: %s\n    url: %s\n    profile: %s/profile.yaml\n' "$n" "$url" "$TARGETS_DIR/$n"
    [ -f "$TARGETS_DIR/$n/baseline.yaml" ] && printf '    baseline: %s/baseline.yaml\n' "$TARGETS_DIR/$n"
    JOBS=
    # shellcheck disable=SC1091
    [ -f "$TARGETS_DIR/$n/run.conf" ] && . "$TARGETS_DIR/$n/run.conf"
    [ -n "$JOBS" ] && printf '    jobs: %s\n' "$JOBS"
  } >> "$matrix"
done

status=0
if [ ${#started[@]} -gt 0 ]; then
  t0=$SECONDS
  "$bin" matrix "$matrix" --html "$reports/matrix.html" --json "$reports/matrix.json" \
    --write-reports "$reports/targets" || status=$?
  printf 'matrix run %s\n' $((SECONDS - t0)) | tee -a "$times"
fi
if [ ${#failed_to_start[@]} -gt 0 ]; then
  echo "targets/ci.sh: did not start: ${failed_to_start[*]}" >&2
  exit 1
fi
case $status in
  0) echo "targets/ci.sh: ${started[*]}: every divergence is in its baseline, every baseline is exact" ;;
  1) echo "targets/ci.sh: a divergence outside a baseline, or a stale or fixed baseline entry (above; reports in $reports)" >&2 ;;
  *) echo "targets/ci.sh: the matrix could not run (exit $status; above)" >&2 ;;
esac
exit "$status"
