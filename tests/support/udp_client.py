#!/usr/bin/env python3
"""A standard SOCKS5 UDP client (RFC 1928 §4 and §7 framing), for the end-to-end tests.

    udp_client.py PROXY TARGET PORT N [--drops STATUS_ADDR]

UDP ASSOCIATE through PROXY, warm up until TARGET (a datagram echo) answers, then N
datagrams of mixed sizes; every reply must come from the relay, name TARGET as its source
and carry exactly a payload this association sent. Prints one JSON line (loss, corruption,
round-trip times), then checks that closing the control connection ends the association.
With --drops: also sends an oversize, a fragmented, an IP-literal and a spoofed-source
datagram, and prints the listener's UDP counters from the status endpoint before and after.
Exit status 0 when nothing was corrupted or misdirected.
"""
import json, os, random, socket, struct, sys, time, urllib.request

args = sys.argv[1:]
drops = None
if "--drops" in args:
    i = args.index("--drops"); drops = args[i + 1]; del args[i:i + 2]
proxy, target, tport, n = args[0], args[1], int(args[2]), int(args[3])
host, pport = proxy.rsplit(":", 1)

def hdr(name, port, frag=0):
    return b"\x00\x00" + bytes([frag, 3, len(name)]) + name.encode() + struct.pack(">H", port)

def parse(d):
    if d[:3] != b"\x00\x00\x00":
        raise ValueError("bad RSV/FRAG")
    if d[3] == 3:
        l = d[4]; return d[5:5 + l].decode(), struct.unpack(">H", d[5 + l:7 + l])[0], d[7 + l:]
    if d[3] == 1:
        return socket.inet_ntoa(d[4:8]), struct.unpack(">H", d[8:10])[0], d[10:]
    raise ValueError("ATYP %d" % d[3])

def status():
    with urllib.request.urlopen("http://%s/status" % drops, timeout=5) as r:
        return {k: v for k, v in json.load(r)["listeners"][0].items() if k.startswith("udp_")}

t0 = time.time()
c = socket.create_connection((host, int(pport)))
c.sendall(b"\x05\x01\x00"); assert c.recv(2) == b"\x05\x00"
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
# The client names its own source, so the relay pins the port too.
c.sendall(b"\x05\x03\x00\x01" + socket.inet_aton("127.0.0.1") + struct.pack(">H", u.getsockname()[1]))
c.settimeout(120)
r = c.recv(10)
assert r[:2] == b"\x05\x00" and r[3] == 1, r
relay = (socket.inet_ntoa(r[4:8]), struct.unpack(">H", r[8:10])[0])
assoc_s = time.time() - t0

u.settimeout(2)
warm = None
for i in range(60):
    u.sendto(hdr(target, tport) + b"warm%d" % i, relay)
    try:
        warm = u.recvfrom(65536); break
    except socket.timeout:
        pass
assert warm, "no echo during warm-up"
src, sport, _ = parse(warm[0])
assert src == target, (src, target)
time.sleep(2.5)
while True:  # late warm-up echoes
    u.settimeout(0.2)
    try: u.recvfrom(65536)
    except socket.timeout: break

rng = random.Random(os.getpid())
sizes = [rng.choice([1, 16, 100, 512, 1000, 1400, 4000, 7000]) for _ in range(n)]
tag = os.urandom(4)
sent, got, rtts = {}, set(), []
bad = []
u.setblocking(False)

def drain():
    while True:
        try:
            d, a = u.recvfrom(65536)
        except (BlockingIOError, socket.timeout):
            return
        try:
            s, p, pl = parse(d)
        except Exception as e:
            bad.append("unparsable: %s" % e); continue
        if a != relay or s != target:
            bad.append("from %s / source %s" % (a, s)); continue
        if len(pl) < 8 or pl[4:8] != tag:
            bad.append("not this association's payload"); continue
        seq, = struct.unpack(">I", pl[:4])
        if seq not in sent or pl != sent[seq][0]:
            bad.append("corrupt payload %d" % seq); continue
        if seq not in got:
            got.add(seq); rtts.append(time.time() - sent[seq][1])

for i in range(n):
    pl = struct.pack(">I", i) + tag + os.urandom(sizes[i])
    sent[i] = (pl, time.time())
    u.sendto(hdr(target, tport) + pl, relay)
    if i % 20 == 19:
        time.sleep(0.02)
    drain()
end = time.time() + 15
while time.time() < end and len(got) < n:
    drain(); time.sleep(0.005)
rtts.sort()
res = {"sent": n, "received": len(got), "loss": round(1 - len(got) / n, 4), "bad": len(bad),
       "bad_examples": bad[:3], "assoc_s": round(assoc_s, 2), "reply_port": sport,
       "rtt_ms_p50": round(rtts[len(rtts) // 2] * 1000, 1) if rtts else None,
       "rtt_ms_p90": round(rtts[int(len(rtts) * .9)] * 1000, 1) if rtts else None}

# Round trips one at a time (the burst above measures loss; its times include queueing).
u.setblocking(True); u.settimeout(2)
seq_rtts = []
for i in range(100):
    pl = struct.pack(">I", 1_000_000 + i) + tag + b"p" * 92
    t = time.time(); u.sendto(hdr(target, tport) + pl, relay)
    try:
        while True:
            d, a = u.recvfrom(65536)
            if parse(d)[2] == pl:
                seq_rtts.append(time.time() - t); break
    except socket.timeout:
        pass
seq_rtts.sort()
res["pingpong"] = {"sent": 100, "received": len(seq_rtts),
                   "rtt_ms_p50": round(seq_rtts[len(seq_rtts) // 2] * 1000, 2) if seq_rtts else None}
u.setblocking(False)

if drops:
    before = status()
    u.sendto(hdr(target, tport) + b"x" * 40000, relay)            # oversize
    u.sendto(hdr(target, tport, frag=1) + b"frag", relay)          # fragment
    u.sendto(b"\x00\x00\x00\x01" + socket.inet_aton("10.1.2.3") + b"\x00\x35" + b"dns", relay)
    u.sendto(hdr("example.com", 53) + b"clearnet", relay)          # clearnet name
    spoof = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); spoof.bind(("127.0.0.1", 0))
    spoof.sendto(hdr(target, tport) + b"spoofed", relay)           # another source port
    time.sleep(1)
    after = status()
    res["drops"] = {k: after[k] - before[k] for k in after if after[k] != before[k]}

print(json.dumps(res), flush=True)
c.close()
time.sleep(0.5)
u.setblocking(True); u.settimeout(2)
u.sendto(hdr(target, tport) + b"after-close", relay)
try:
    u.recvfrom(65536); print("ERROR: the association outlived its control connection"); sys.exit(1)
except (socket.timeout, ConnectionRefusedError):
    print("closed: nothing after the control connection closed")
sys.exit(0 if not bad else 1)
