#!/usr/bin/env bash
# Starts ActiveMQ with one transport, MQTT on a free 127.0.0.1 port, no JMX,
# a fresh persistent (KahaDB) store in the state directory. Ready in < 12 s.
TARGET_NAME=activemq
. "$(dirname "$0")/../lib.sh"

home=$(cache_dir)/home
[ -f "$home/bin/activemq.jar" ] || die "ActiveMQ is not installed: run $TARGETS_DIR/activemq/install.sh"
state=$(fresh_state_dir)
port=$(free_port)
mkdir -p "$state/data"
pid=$(start_daemon "$state/broker.log" java -Xms256M -Xmx512M \
  -Dactivemq.home="$home" -Dactivemq.base="$state" -Dactivemq.conf="$home/conf" \
  -Dactivemq.data="$state/data" -Djava.io.tmpdir="$state" -Dlog4j.configuration="file:$home/conf/log4j.properties" \
  -jar "$home/bin/activemq.jar" start \
  "broker:(mqtt://127.0.0.1:$port)?useJmx=false&persistent=true&dataDirectory=$state/data")
wait_ready 60 "$pid" "$state/broker.log" "$port"
started "mqtt://127.0.0.1:$port" "$pid"
