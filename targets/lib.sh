# shellcheck shell=bash
# What every targets/NAME/ script does, once: where things live, a free
# loopback port, waiting (with a deadline) until a broker answers MQTT,
# stopping a process, and running the suite. Sourced, never run:
#
#   . "$(dirname "$0")/../lib.sh"
#
# Layout at run time:
#   $MQTT_HARNESS_CACHE/NAME    what install.sh installs (default ~/.cache/mqtt-harness)
#   $TARGETS_STATE/NAME         a started broker: config, log, `env` (URL=, PID=, …)
#                               (default target/targets/ in the repository, which git ignores)

set -euo pipefail

TARGETS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$TARGETS_DIR/.." && pwd)
CACHE_ROOT=${MQTT_HARNESS_CACHE:-$HOME/.cache/mqtt-harness}
STATE_ROOT=${TARGETS_STATE:-$REPO_DIR/target/targets}

die() {
  printf '%s: %s\n' "${TARGET_NAME:-targets}" "$*" >&2
  exit 1
}

note() { printf '%s: %s\n' "${TARGET_NAME:-targets}" "$*" >&2; }

# The cache directory of this target's installation (created).
cache_dir() {
  mkdir -p "$CACHE_ROOT/$TARGET_NAME"
  printf '%s\n' "$CACHE_ROOT/$TARGET_NAME"
}

# A fresh state directory for one started broker (an old one is removed:
# a broker's files from an earlier run must not leak into this one).
fresh_state_dir() {
  local d="$STATE_ROOT/$TARGET_NAME"
  rm -rf "$d"
  mkdir -p "$d"
  printf '%s\n' "$d"
}

state_dir() { printf '%s\n' "$STATE_ROOT/$TARGET_NAME"; }

# A free TCP port on 127.0.0.1: bind port 0, read what the kernel chose,
# release it. The broker binds it a moment later; wait_ready then checks
# that the broker itself answers there.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# mqtt_answers PORT [LEVEL]: exit 0 when an MQTT broker on 127.0.0.1:PORT
# answers a CONNECT of protocol level LEVEL (4 = 3.1.1, the default; 5 = 5.0)
# with a CONNACK accepting it (code 0), within 2 s. A listening socket is not
# enough: RabbitMQ and ActiveMQ accept TCP before their MQTT layer is up.
mqtt_answers() {
  python3 - "$1" "${2:-4}" <<'EOF'
import socket, sys
port, level = int(sys.argv[1]), int(sys.argv[2])
cid = b"targets-ready-probe"
var = b"\x00\x04MQTT" + bytes([level, 0x02]) + b"\x00\x3c" + (b"\x00" if level == 5 else b"")
body = var + len(cid).to_bytes(2, "big") + cid
try:
    s = socket.create_connection(("127.0.0.1", port), timeout=2)
    s.settimeout(2)
    s.sendall(bytes([0x10, len(body)]) + body)
    head = s.recv(2)
    rest = s.recv(head[1]) if len(head) == 2 else b""
    ok = len(head) == 2 and head[0] == 0x20 and len(rest) >= 2 and rest[1] == 0
    if ok:
        s.sendall(b"\xe0\x00")  # DISCONNECT, valid in both versions
    s.close()
    sys.exit(0 if ok else 1)
except OSError:
    sys.exit(1)
EOF
}

# wait_ready SECONDS PID LOG PORT [LEVEL]: poll until the broker answers
# MQTT on PORT (mqtt_answers), at most SECONDS. Fails, showing LOG, when the
# process PID exits first or the deadline passes.
wait_ready() {
  local seconds=$1 pid=$2 log=$3 port=$4 level=${5:-4}
  local deadline=$((SECONDS + seconds))
  until mqtt_answers "$port" "$level"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      note "the broker (pid $pid) exited before answering MQTT on 127.0.0.1:$port; its log ($log):"
      tail -n 60 "$log" >&2 || true
      exit 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      note "the broker (pid $pid) did not answer MQTT on 127.0.0.1:$port within $seconds s; its log ($log):"
      tail -n 60 "$log" >&2 || true
      kill "$pid" 2>/dev/null || true
      exit 1
    fi
    sleep 0.2
  done
}

# started URL PID [KEY=VALUE…]: records the started broker in $(state_dir)/env
# (read by stop.sh and run_suite) and prints what start.sh promises.
started() {
  local url=$1 pid=$2
  shift 2
  {
    printf 'URL=%s\nPID=%s\n' "$url" "$pid"
    for kv in "$@"; do printf '%s\n' "$kv"; done
  } > "$(state_dir)/env"
  printf 'URL=%s\nPID=%s\n' "$url" "$pid"
}

# The value of KEY in the started broker's env file (empty when absent).
state_value() {
  local f
  f="$(state_dir)/env"
  [ -f "$f" ] || return 0
  sed -n "s/^$1=//p" "$f" | tail -n 1
}

# stop_pid PID [SECONDS]: SIGTERM, wait at most SECONDS (default 20) for the
# process to go, then SIGKILL. Quiet when it is already gone.
stop_pid() {
  local pid=$1 seconds=${2:-20}
  kill -0 "$pid" 2>/dev/null || return 0
  kill "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + seconds))
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      note "pid $pid still runs $seconds s after SIGTERM: SIGKILL"
      kill -9 "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
}

# The default stop: the recorded PID, then the state forgotten.
stop_recorded() {
  local pid
  pid=$(state_value PID)
  if [ -z "$pid" ]; then
    note "not started (no $(state_dir)/env): nothing to stop"
    return 0
  fi
  stop_pid "$pid" "${1:-20}"
  rm -f "$(state_dir)/env"
}

# start_daemon LOG CMD…: runs CMD in its own session, detached from this
# script (so start.sh can return while the broker runs), output to LOG;
# prints its pid.
start_daemon() {
  local log=$1
  shift
  setsid "$@" > "$log" 2>&1 < /dev/null &
  printf '%s\n' "$!"
}

# The harness binary: $MQTT_HARNESS, or the release build of this repository.
harness_bin() {
  local bin=${MQTT_HARNESS:-$REPO_DIR/target/release/mqtt-harness}
  [ -x "$bin" ] || die "no harness at $bin: build it (cargo build --release --bin mqtt-harness) or set MQTT_HARNESS"
  printf '%s\n' "$bin"
}

# run_suite OUT_DIR [extra run flags…]: runs the scenario suite against the
# started broker with the target's profile and baseline, writing
# OUT_DIR/report.json and OUT_DIR/report.html; targets/NAME/run.conf may set
# JOBS (cases at once). Returns run's exit status.
run_suite() {
  local out=$1
  shift
  local url bin dir=$TARGETS_DIR/$TARGET_NAME
  url=$(state_value URL)
  [ -n "$url" ] || die "not started: run $dir/start.sh first"
  bin=$(harness_bin)
  mkdir -p "$out"
  local baseline=() JOBS=
  [ -f "$dir/baseline.yaml" ] && baseline=(--baseline "targets/$TARGET_NAME/baseline.yaml")
  # shellcheck disable=SC1091
  [ -f "$dir/run.conf" ] && . "$dir/run.conf"
  [ -n "$JOBS" ] && baseline+=(--jobs "$JOBS")
  (cd "$REPO_DIR" && "$bin" run scenarios/ --target "$url" --profile "targets/$TARGET_NAME/profile.yaml" \
    "${baseline[@]}" --json "$out/report.json" --html "$out/report.html" "$@")
}
