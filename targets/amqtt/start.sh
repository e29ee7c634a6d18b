#!/usr/bin/env bash
# Starts amqtt on a free 127.0.0.1 port, anonymous clients allowed.
# amqtt leaks retained messages across cases under load, so every run of the
# suite gets a fresh broker (this script), never one reused.
TARGET_NAME=amqtt
. "$(dirname "$0")/../lib.sh"

venv=$(cache_dir)/venv
[ -x "$venv/bin/amqtt" ] || die "amqtt is not installed: run $TARGETS_DIR/amqtt/install.sh"
state=$(fresh_state_dir)
port=$(free_port)
cat > "$state/amqtt.yaml" <<CONF
listeners:
  default:
    type: tcp
    bind: 127.0.0.1:$port
plugins:
  amqtt.plugins.authentication.AnonymousAuthPlugin:
    allow_anonymous: true
CONF
pid=$(start_daemon "$state/broker.log" "$venv/bin/amqtt" -c "$state/amqtt.yaml")
wait_ready 30 "$pid" "$state/broker.log" "$port"
started "mqtt://127.0.0.1:$port" "$pid"
