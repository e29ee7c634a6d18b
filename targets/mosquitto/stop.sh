#!/usr/bin/env bash
TARGET_NAME=mosquitto
. "$(dirname "$0")/../lib.sh"
stop_recorded
