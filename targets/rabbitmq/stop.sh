#!/usr/bin/env bash
# Stops the private node (rabbitmqctl stop, in its environment), then the epmd
# it started on its private port.
TARGET_NAME=rabbitmq
. "$(dirname "$0")/../lib.sh"

state=$(state_dir)
[ -f "$state/rabbitmq.env" ] || { note "not started: nothing to stop"; exit 0; }
(
  # shellcheck disable=SC1091
  . "$state/rabbitmq.env"
  timeout 60 /usr/lib/rabbitmq/bin/rabbitmqctl stop > "$state/stop.log" 2>&1 \
    || { note "rabbitmqctl stop failed:"; cat "$state/stop.log" >&2; }
  timeout 10 epmd -port "$ERL_EPMD_PORT" -kill > /dev/null 2>&1 || true
)
pid=$(state_value PID)
[ -n "$pid" ] && stop_pid "$pid" 20
# Anything the node left behind in its session (epmd, erl_child_setup).
pkill_session() { local sid=$1; [ -n "$sid" ] && pgrep -s "$sid" | xargs -r kill 2>/dev/null || true; }
[ -n "$pid" ] && pkill_session "$pid"
rm -f "$state/env" "$state/rabbitmq.env"
