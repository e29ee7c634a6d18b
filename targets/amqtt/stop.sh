#!/usr/bin/env bash
TARGET_NAME=amqtt
. "$(dirname "$0")/../lib.sh"
stop_recorded
