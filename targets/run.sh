#!/usr/bin/env bash
# targets/run.sh NAME [OUT_DIR] [-- run flags…]
#
# Installs (if needed), starts a fresh broker, runs the scenario suite against
# it with targets/NAME/profile.yaml and baseline.yaml, and stops it, whatever
# happened. Writes OUT_DIR/report.json and report.html (default:
# targets/NAME/, the committed last reports) and OUT_DIR/times (seconds the
# install, the start and the run took). Exits with the run's status (0
# conforming or only known divergences, 1 divergences or a fixed/stale
# entry, 2 bad input, 3 could not run); 1 when the broker does not start.
set -euo pipefail
name=${1:?usage: targets/run.sh NAME [OUT_DIR] [-- run flags…]}
shift
TARGET_NAME=$name
. "$(dirname "$0")/lib.sh"
dir=$TARGETS_DIR/$name
[ -d "$dir" ] || die "no target $name in $TARGETS_DIR"
out=$dir
if [ $# -gt 0 ] && [ "$1" != "--" ]; then out=$1; shift; fi
[ "${1:-}" = "--" ] && shift
mkdir -p "$out"
out=$(cd "$out" && pwd)

t0=$SECONDS
"$dir/install.sh"
t1=$SECONDS
"$dir/start.sh" > /dev/null
t2=$SECONDS
trap '"$dir/stop.sh" || note "stop.sh failed"' EXIT
status=0
run_suite "$out" "$@" > "$out/run.log" 2>&1 || status=$?
t3=$SECONDS
tail -n 3 "$out/run.log" >&2
printf 'install %s\nstart %s\nrun %s\nstatus %s\n' $((t1 - t0)) $((t2 - t1)) $((t3 - t2)) "$status" > "$out/times"
note "install $((t1 - t0)) s, start $((t2 - t1)) s, run $((t3 - t2)) s, exit status $status"
exit "$status"
