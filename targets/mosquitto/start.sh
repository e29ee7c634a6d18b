#!/usr/bin/env bash
# Starts mosquitto on a free 127.0.0.1 port with the configuration the suite
# is baselined with: one listener, anonymous clients, nothing else set.
# Prints URL=mqtt://127.0.0.1:PORT and PID=….
TARGET_NAME=mosquitto
. "$(dirname "$0")/../lib.sh"

[ -x /usr/sbin/mosquitto ] || die "mosquitto is not installed: run $TARGETS_DIR/mosquitto/install.sh"
state=$(fresh_state_dir)
port=$(free_port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$port" > "$state/mosquitto.conf"
pid=$(start_daemon "$state/broker.log" /usr/sbin/mosquitto -c "$state/mosquitto.conf")
wait_ready 30 "$pid" "$state/broker.log" "$port"
started "mqtt://127.0.0.1:$port" "$pid"
