#!/usr/bin/env bash
# The same rumqttd build as rumqttd-v4 (one broker, two listeners).
exec "$(dirname "$0")/../rumqttd-v4/install.sh" "$@"
