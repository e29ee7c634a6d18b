#!/usr/bin/env bash
# amqtt 0.12.1 (PyPI) in a virtualenv at $MQTT_HARNESS_CACHE/amqtt. Idempotent.
TARGET_NAME=amqtt
. "$(dirname "$0")/../lib.sh"

VERSION=0.12.1
dir=$(cache_dir)
venv=$dir/venv
if [ -x "$venv/bin/amqtt" ] && [ "$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("amqtt"))' 2>/dev/null)" = "$VERSION" ]; then
  note "amqtt $VERSION already installed in $venv"
  exit 0
fi
rm -rf "$venv"
python3 -m venv "$venv" || die "python3 -m venv failed (apt-get install python3-venv?)"
"$venv/bin/pip" install --quiet --disable-pip-version-check "amqtt==$VERSION" || die "pip install amqtt==$VERSION failed"
[ -x "$venv/bin/amqtt" ] || die "amqtt installed, but $venv/bin/amqtt is missing"
note "installed amqtt $VERSION in $venv"
