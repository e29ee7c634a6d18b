#!/usr/bin/env bash
# RabbitMQ 3.10 from Debian (3.10.8 on bookworm); rabbitmq_mqtt ships with it.
# Idempotent. The package's own service is not used (start.sh runs a private
# node); if the package started it, it is stopped, so that nothing listens
# beyond 127.0.0.1.
TARGET_NAME=rabbitmq
. "$(dirname "$0")/../lib.sh"

if [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rabbitmq-server
  if pgrep -u rabbitmq beam.smp > /dev/null 2>&1; then
    note "the package started its own service: stopping it"
    service rabbitmq-server stop || true
  fi
fi
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || die "/usr/lib/rabbitmq/bin/rabbitmq-server is missing after apt-get install rabbitmq-server"
ls /usr/lib/rabbitmq/lib/rabbitmq_server-*/plugins/ | grep -q '^rabbitmq_mqtt' \
  || die "the rabbitmq_mqtt plugin is not in /usr/lib/rabbitmq/lib/rabbitmq_server-*/plugins"
note "installed: $(dpkg-query -W -f '${Package} ${Version}' rabbitmq-server)"
