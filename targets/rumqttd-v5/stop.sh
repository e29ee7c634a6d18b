#!/usr/bin/env bash
TARGET_NAME=rumqttd-v5
. "$(dirname "$0")/../lib.sh"
stop_recorded
