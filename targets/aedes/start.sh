#!/usr/bin/env bash
# Starts aedes (default options) on a free 127.0.0.1 port.
TARGET_NAME=aedes
. "$(dirname "$0")/../lib.sh"

dir=$(cache_dir)
[ -d "$dir/node_modules/aedes" ] || die "aedes is not installed: run $TARGETS_DIR/aedes/install.sh"
state=$(fresh_state_dir)
port=$(free_port)
pid=$(NODE_PATH=$dir/node_modules start_daemon "$state/broker.log" node "$TARGETS_DIR/aedes/server.js" "$port")
wait_ready 30 "$pid" "$state/broker.log" "$port"
started "mqtt://127.0.0.1:$port" "$pid"
