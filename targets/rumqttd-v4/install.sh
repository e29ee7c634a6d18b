#!/usr/bin/env bash
# Builds rumqttd 0.20.0 from the crate's source into $MQTT_HARNESS_CACHE/rumqttd
# (default ~/.cache/mqtt-harness/rumqttd); reused when the binary is there.
# Shared by rumqttd-v4 and rumqttd-v5 (one broker, two listeners).
#
# `cargo install rumqttd --locked` fails on current rustc: the Cargo.lock the
# crate ships pins metrics 0.22.1, which no longer compiles (E0521). So: the
# crate's source from the registry (cargo fetch of a throw-away manifest that
# depends on it), copied, its lock moved to metrics 0.22.4, then built.
# About 5 minutes on 2 cores, once.
TARGET_NAME=rumqttd
. "$(dirname "$0")/../lib.sh"

VERSION=0.20.0
dir=$(cache_dir)
bin=$dir/bin/rumqttd
if [ -x "$bin" ] && [ "$(cat "$bin.version" 2>/dev/null)" = "$VERSION" ]; then
  note "rumqttd $VERSION already built: $bin"
  exit 0
fi
command -v cargo >/dev/null || die "cargo is needed to build rumqttd"

src=$(ls -d "$HOME"/.cargo/registry/src/*/rumqttd-$VERSION 2>/dev/null | head -n 1 || true)
if [ -z "$src" ]; then
  note "fetching the rumqttd $VERSION crate"
  fetch=$dir/fetch
  mkdir -p "$fetch/src"
  printf '[package]\nname = "fetch-rumqttd"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\nrumqttd = "=%s"\n' \
    "$VERSION" > "$fetch/Cargo.toml"
  : > "$fetch/src/lib.rs"
  (cd "$fetch" && cargo fetch --quiet) || die "cargo fetch of rumqttd $VERSION failed"
  crate=$(ls "$HOME"/.cargo/registry/cache/*/rumqttd-$VERSION.crate 2>/dev/null | head -n 1 || true)
  [ -n "$crate" ] || die "rumqttd-$VERSION.crate is not in ~/.cargo/registry/cache after cargo fetch"
  mkdir -p "$dir/crate"
  tar -xzf "$crate" -C "$dir/crate"
  src=$dir/crate/rumqttd-$VERSION
fi

build=$dir/src
rm -rf "$build"
cp -r "$src" "$build"
cd "$build"
note "moving metrics 0.22.1 to 0.22.4 in the crate's Cargo.lock"
cargo update --offline -p metrics@0.22.1 --precise 0.22.4 2>/dev/null \
  || cargo update -p metrics@0.22.1 --precise 0.22.4 \
  || die "cannot move metrics to 0.22.4 in $build/Cargo.lock"
note "building rumqttd $VERSION (release; a few minutes)"
log=$dir/build.log
if ! CARGO_TARGET_DIR=$dir/target cargo build --release --locked --bin rumqttd > "$log" 2>&1; then
  note "the build failed; its log ($log):"
  tail -n 40 "$log" >&2
  exit 1
fi
mkdir -p "$dir/bin"
cp "$dir/target/release/rumqttd" "$bin"
printf '%s\n' "$VERSION" > "$bin.version"
note "built $bin"
