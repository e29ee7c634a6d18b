#!/usr/bin/env bash
TARGET_NAME=activemq
. "$(dirname "$0")/../lib.sh"
stop_recorded 30
