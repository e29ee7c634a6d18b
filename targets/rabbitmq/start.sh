#!/usr/bin/env bash
# Starts a private RabbitMQ node (its own node name, config, mnesia and log
# directories, epmd port) with the rabbitmq_mqtt plugin: MQTT, AMQP, Erlang
# distribution and epmd all on free 127.0.0.1 ports. Ready after ~15 s.
TARGET_NAME=rabbitmq
. "$(dirname "$0")/../lib.sh"

[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || die "RabbitMQ is not installed: run $TARGETS_DIR/rabbitmq/install.sh"
state=$(fresh_state_dir)
amqp=$(free_port)
mqtt=$(free_port)
dist=$(free_port)
epmd=$(free_port)
cat > "$state/rabbitmq.conf" <<CONF
listeners.tcp.default = 127.0.0.1:$amqp
mqtt.listeners.tcp.default = 127.0.0.1:$mqtt
mqtt.allow_anonymous = true
mqtt.default_user = guest
mqtt.default_pass = guest
mqtt.vhost = /
mqtt.exchange = amq.topic
loopback_users.guest = true
management.tcp.ip = 127.0.0.1
CONF
printf '[rabbitmq_mqtt].\n' > "$state/enabled_plugins"
# The environment of this node, for rabbitmqctl in stop.sh as well.
cat > "$state/rabbitmq.env" <<ENV
export RABBITMQ_NODENAME=mqttharness$mqtt@localhost
export RABBITMQ_CONFIG_FILE=$state/rabbitmq.conf
export RABBITMQ_ENABLED_PLUGINS_FILE=$state/enabled_plugins
export RABBITMQ_MNESIA_BASE=$state/mnesia
export RABBITMQ_LOG_BASE=$state/log
export RABBITMQ_DIST_PORT=$dist
export RABBITMQ_PID_FILE=$state/rabbit.pid
export ERL_EPMD_ADDRESS=127.0.0.1
export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS='-kernel inet_dist_use_interface {127,0,0,1}'
export RABBITMQ_CTL_ERL_ARGS='-kernel inet_dist_use_interface {127,0,0,1}'
export ERL_EPMD_PORT=$epmd
export HOME=$state
ENV
# shellcheck disable=SC1091
. "$state/rabbitmq.env"
pid=$(start_daemon "$state/broker.log" /usr/lib/rabbitmq/bin/rabbitmq-server)
if ! (wait_ready 90 "$pid" "$state/broker.log" "$mqtt"); then
  note "the node's own log:"
  tail -n 40 "$state"/log/*.log >&2 2>/dev/null || true
  "$TARGETS_DIR/rabbitmq/stop.sh" || true
  exit 1
fi
started "mqtt://127.0.0.1:$mqtt" "$pid" "EPMD_PORT=$epmd"
