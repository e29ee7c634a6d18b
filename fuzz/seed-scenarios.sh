#!/usr/bin/env bash
# Seeds the committed corpus from every scenario's packets.
#
#   fuzz/seed-scenarios.sh
#
# Runs the whole scenario library against the embedded reference broker with
# --verbose, which prints every packet each scenario client sent and received
# with its wire bytes (and the raw, deliberately broken sends). From those it
# writes candidate inputs per target:
#   decode        selector byte + one client's (or the broker's) whole stream
#   differential  selector byte + one packet
#   roundtrip     selector byte + packet-type byte + one packet (as entropy,
#                 the convention of codec/tests/fuzz_seeds.rs)
#   broker        a script for the broker target: default configuration, one
#                 connection per scenario client, each client's bytes sent as
#                 raw-bytes operations in the order of the exchange
# then merges them into fuzz/corpus/<target>/ with libFuzzer's -merge=1, which
# keeps only those that add coverage, named scenario-<sha1>. Run it again
# after adding scenarios, and commit what it adds.
set -euo pipefail

fuzz_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$fuzz_dir")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$root"
cargo build --quiet --bin mqtt-harness
echo "seed-scenarios: running the scenario library (verbose) on the embedded broker" >&2
target/debug/mqtt-harness run scenarios/ --verbose --color never > "$work/exchanges.log" || {
  echo "seed-scenarios: the scenario run failed; see $work/exchanges.log" >&2
  exit 1
}

python3 - "$work/exchanges.log" "$work/gen" <<'PY'
import hashlib, os, re, sys

log, out = sys.argv[1], sys.argv[2]
case_re = re.compile(r'^[A-Z]+\s+(\S+) \[(3\.1|3\.1\.1|5\.0)\]')
line_re = re.compile(r'^\s+(\S+) (->|<-) (?:(\{.*\}) )?\[([0-9a-f ]+)\]$')
PROTO = {'3.1': 0, '3.1.1': 1, '5.0': 2}
# Packet types in the order codec::gen::packet chooses among those a sender may send.
TYPES = ['CONNECT', 'CONNACK', 'PUBLISH', 'PUBACK', 'PUBREC', 'PUBREL', 'PUBCOMP', 'SUBSCRIBE',
         'SUBACK', 'UNSUBSCRIBE', 'UNSUBACK', 'PINGREQ', 'PINGRESP', 'DISCONNECT', 'AUTH']
FROM_SERVER = {'CONNACK', 'SUBACK', 'UNSUBACK', 'PINGRESP'}
FROM_CLIENT = {'CONNECT', 'SUBSCRIBE', 'UNSUBSCRIBE', 'PINGREQ'}

def allowed(t, server, v5):
    if t == 'AUTH' and not v5:
        return False
    if t == 'DISCONNECT' and server and not v5:
        return False
    return t not in (FROM_CLIENT if server else FROM_SERVER)

def selector(proto, server):
    return PROTO[proto] + (3 if server else 0)

def write(target, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)

cases = []  # (protocol, [(client, to_server, json, bytes)])
for line in open(log, encoding='utf-8', errors='replace'):
    m = case_re.match(line)
    if m:
        cases.append((m.group(2), []))
        continue
    m = line_re.match(line.rstrip('\n'))
    if m and cases:
        client, arrow, js, hexs = m.groups()
        cases[-1][1].append((client, arrow == '->', js, bytes.fromhex(hexs.replace(' ', ''))))

# Default broker configuration: the first choice of every pick, no ratio hit.
BROKER_CONFIG = bytes([0, 0, 1, 0, 0, 0, 0, 1, 1])
MAX_RAW, MAX_CONNS = 48, 6
for proto, lines in cases:
    v5 = proto == '5.0'
    streams = {}
    for client, to_server, js, data in lines:
        streams.setdefault((client, to_server), bytearray()).extend(data)
        server = not to_server
        write('differential', bytes([selector(proto, server)]) + data)
        t = re.search(r'"type":"([A-Z]+)"', js or '')
        if t:
            types = [x for x in TYPES if allowed(x, server, v5)]
            if t.group(1) in types:
                write('roundtrip', bytes([selector(proto, server), types.index(t.group(1))]) + data)
    for (client, to_server), data in streams.items():
        write('decode', bytes([selector(proto, not to_server)]) + bytes(data))
    # The broker script: the harness reads one byte per choice (an index
    # modulo the number of options; a choice among one option reads none).
    script, live = bytearray(BROKER_CONFIG), []
    for client, to_server, js, data in lines:
        if not to_server:
            continue
        if client not in live:
            if len(live) >= MAX_CONNS:
                continue
            if live:
                script.append(0)  # operation 0: open a connection
                if len(live) > 1:
                    script.append(0)
            live.append(client)
        for at in range(0, len(data), MAX_RAW):
            chunk = data[at:at + MAX_RAW]
            script.append(10)  # operation 10: raw bytes
            if len(live) > 1:
                script.append(live.index(client))
            script.append(len(chunk) - 1)
            script.extend(chunk)
    if live:
        write('broker', bytes(script))
for t in sorted(os.listdir(out)):
    print(f"seed-scenarios: {len(os.listdir(os.path.join(out, t)))} candidate inputs for {t}", file=sys.stderr)
PY

cd "$fuzz_dir"
cargo +nightly fuzz build -s none >&2
bin="target/x86_64-unknown-linux-gnu/release"
for t in decode differential roundtrip broker; do
  mkdir -p "corpus/$t"
  before="$(ls "corpus/$t" | wc -l)"
  "$bin/$t" -merge=1 -artifact_prefix="$work/" "corpus/$t" "$work/gen/$t" >"$work/merge-$t.log" 2>&1 || {
    echo "seed-scenarios: merging into corpus/$t failed:" >&2
    tail -n 20 "$work/merge-$t.log" >&2
    exit 1
  }
  # libFuzzer names what it adds by its SHA-1; say where it came from.
  for f in corpus/"$t"/*; do
    n="$(basename "$f")"
    case "$n" in seed-* | scenario-*) ;; *) mv "$f" "corpus/$t/scenario-$n" ;; esac
  done
  echo "seed-scenarios: corpus/$t: $before -> $(ls "corpus/$t" | wc -l) inputs" >&2
done
