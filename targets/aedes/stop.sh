#!/usr/bin/env bash
TARGET_NAME=aedes
. "$(dirname "$0")/../lib.sh"
stop_recorded
