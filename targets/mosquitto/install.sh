#!/usr/bin/env bash
# Eclipse Mosquitto 2.0 from Debian (2.0.11 on bookworm). Idempotent.
TARGET_NAME=mosquitto
. "$(dirname "$0")/../lib.sh"

if [ -x /usr/sbin/mosquitto ]; then
  note "installed: $(/usr/sbin/mosquitto -h 2>/dev/null | head -n 1)"
  exit 0
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto
[ -x /usr/sbin/mosquitto ] || die "apt-get installed mosquitto, but /usr/sbin/mosquitto is missing"
