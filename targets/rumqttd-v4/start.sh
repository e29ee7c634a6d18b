#!/usr/bin/env bash
# Starts rumqttd 0.20 with its MQTT 3.1.1 listener only (rumqttd.toml beside this
# script) on a free 127.0.0.1 port.
TARGET_NAME=rumqttd-v4
. "$(dirname "$0")/../lib.sh"

bin=$CACHE_ROOT/rumqttd/bin/rumqttd
[ -x "$bin" ] || die "rumqttd is not built: run $TARGETS_DIR/rumqttd-v4/install.sh"
state=$(fresh_state_dir)
port=$(free_port)
sed "s/@PORT@/$port/" "$TARGETS_DIR/rumqttd-v4/rumqttd.toml" > "$state/rumqttd.toml"
pid=$(start_daemon "$state/broker.log" "$bin" -c "$state/rumqttd.toml")
wait_ready 30 "$pid" "$state/broker.log" "$port" 4
started "mqtt://127.0.0.1:$port" "$pid"
