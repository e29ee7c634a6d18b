#!/bin/bash -eu
# OSS-Fuzz-style build script (ClusterFuzzLite runs it in its builder image;
# OSS-Fuzz would too): builds every cargo-fuzz target of fuzz/ and puts in
# $OUT, per target, the binary, its seed corpus (<target>_seed_corpus.zip,
# the committed fuzz/corpus/<target>/) and, for the codec targets, the MQTT
# dictionary (<target>.dict) with a <target>.options naming it.
#
# $SRC, $OUT and $SANITIZER are what the builder sets; outside it (this
# repository's own test of the script):
#   SRC=$PWD/.. OUT=/tmp/out WORK=/tmp/work SANITIZER=address \
#     RUSTUP_TOOLCHAIN=nightly bash .clusterfuzzlite/build.sh
project="${SRC}/mqtt-harness"
[ -d "$project/fuzz" ] || project="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$project/fuzz"

# cargo-fuzz knows address, memory, thread and leak; the coverage build
# (and anything else) instruments without a sanitizer.
case "${SANITIZER:-address}" in
  address | memory | thread | leak) sanitizer="$SANITIZER" ;;
  *) sanitizer=none ;;
esac

targets=$(cargo fuzz list)
cargo fuzz build -O --debug-assertions --sanitizer "$sanitizer"

mkdir -p "$OUT"
bin=target/x86_64-unknown-linux-gnu/release
for t in $targets; do
  cp "$bin/$t" "$OUT/$t"
  if compgen -G "corpus/$t/*" >/dev/null; then
    rm -f "$OUT/${t}_seed_corpus.zip"
    zip -q -j "$OUT/${t}_seed_corpus.zip" corpus/"$t"/*
  fi
  case "$t" in
    decode | differential | roundtrip | stream_split)
      cp mqtt.dict "$OUT/$t.dict"
      printf '[libfuzzer]\ndict = %s.dict\n' "$t" > "$OUT/$t.options"
      ;;
  esac
done
echo "built into $OUT: $targets" | tr '\n' ' '
echo
