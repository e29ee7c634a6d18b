# The README's comparison: the same `mqtt-harness bench` loads against the
# reference broker (release build) and mosquitto, one after the other in one
# run, with each process's CPU time. After `cargo build --release`:
#   python3 benches/bench_compare.py 5s > table.md
import json, os, resource, socket, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "mqtt-harness")
TMP = tempfile.mkdtemp(prefix="bench-compare-")
DUR = sys.argv[1] if len(sys.argv) > 1 else "5s"

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def wait(port):
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port)).close(); return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing on {port}")

def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

def start(kind):
    port = free_port()
    if kind == "reference":
        p = subprocess.Popen([BIN, "broker", "--listen", f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    else:
        conf = os.path.join(TMP, f"mosquitto-{port}.conf")
        open(conf, "w").write(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\n")
        p = subprocess.Popen(["/usr/sbin/mosquitto", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait(port)
    return p, port

LOADS = [
    ("QoS 0, 1 pub → 1 sub, max rate", ["-q", "0", "-d", DUR]),
    ("QoS 0, 1 pub → 1 sub, 20,000 msg/s", ["-q", "0", "-r", "20000", "-d", DUR]),
    ("QoS 1, 1 pub → 1 sub, max rate", ["-q", "1", "-d", DUR]),
    ("QoS 1, 4 pub → 1 sub, max rate", ["-q", "1", "-P", "4", "-d", DUR]),
    ("QoS 1, 1 pub → 4 sub, max rate", ["-q", "1", "-S", "4", "-d", DUR]),
    ("QoS 2, 1 pub → 1 sub, max rate", ["-q", "2", "-d", DUR]),
    ("1000 connections", ["-P", "0", "-S", "0", "-c", "1000"]),
]

rows = []
for name, args in LOADS:
    for kind in ["reference", "mosquitto"]:
        broker, port = start(kind)
        b0 = cpu(broker.pid)
        c = resource.getrusage(resource.RUSAGE_CHILDREN); c0 = c.ru_utime + c.ru_stime
        t0 = time.time()
        bench = subprocess.Popen([BIN, "bench", "--target", f"mqtt://127.0.0.1:{port}", "--json", "-", "--quiet"] + args,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = bench.communicate()
        c = resource.getrusage(resource.RUSAGE_CHILDREN); gcpu = c.ru_utime + c.ru_stime - c0
        wall = time.time() - t0
        b1 = cpu(broker.pid)
        broker.kill(); broker.wait()
        r = json.loads(out)
        rows.append((name, kind, r, b1 - b0, wall, gcpu))
        print(name, kind, r["sent"], r["received"], r["lost"], r["exit_status"], file=sys.stderr)

print("| load | broker | sent msg/s | received msg/s | p50 ms | p99 ms | p99.9 ms | max ms | lost | broker CPU s | bench CPU s | connections/s |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for name, kind, r, bcpu, wall, gcpu in rows:
    l = r["latency_ms"]; t = r["throughput"]
    print(f"| {name} | {kind} | {t['sent_per_second']:.0f} | {t['received_per_second']:.0f} | {l['p50']} | {l['p99']} | {l['p999']} | {l['max']} | {r['lost']} | {bcpu:.2f} | {gcpu:.2f} | {r['connections']['per_second']:.0f} |")
