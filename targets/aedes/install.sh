#!/usr/bin/env bash
# aedes 1.2.0 (npm) into $MQTT_HARNESS_CACHE/aedes. Idempotent.
TARGET_NAME=aedes
. "$(dirname "$0")/../lib.sh"

VERSION=1.2.0
dir=$(cache_dir)
command -v node >/dev/null && command -v npm >/dev/null || {
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
}
have=$(node -p "require('$dir/node_modules/aedes/package.json').version" 2>/dev/null || true)
if [ "$have" = "$VERSION" ]; then
  note "aedes $VERSION already installed in $dir"
  exit 0
fi
cd "$dir"
[ -f package.json ] || npm init -y > /dev/null
npm install --no-audit --no-fund --silent "aedes@$VERSION" || die "npm install aedes@$VERSION failed"
note "installed aedes $VERSION in $dir"
