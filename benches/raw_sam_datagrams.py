#!/usr/bin/env python3
"""Baseline for the UDP ASSOCIATE benchmark: a raw SAM datagram client on the same router.

    raw_sam_datagrams.py SAM_TCP SAM_UDP ECHO_B32 N [OPTIONS...]

A DATAGRAM session on SAM_TCP, then N datagrams of the same mixed sizes as
tests/support/udp_client.py to the datagram echo ECHO_B32 through SAM_UDP; prints one JSON
line with loss and round-trip times (compare with udp_client.py through eepsocks).
"""
import json, os, random, socket, struct, sys, time
sam_tcp, sam_udp, echo, n = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
opts = " ".join(sys.argv[5:]) or "inbound.length=0 outbound.length=0"
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
s = socket.create_connection(("127.0.0.1", sam_tcp)); f = s.makefile("rwb", buffering=0)
def cmd(l):
    f.write((l + "\n").encode()); return f.readline().decode().strip()
cmd("HELLO VERSION MIN=3.0 MAX=3.3")
t0 = time.time()
r = cmd("SESSION CREATE STYLE=DATAGRAM ID=rawbench DESTINATION=TRANSIENT SIGNATURE_TYPE=7 PORT=%d HOST=127.0.0.1 %s" % (u.getsockname()[1], opts))
assert "RESULT=OK" in r, r.split(" DESTINATION=")[0]
session_s = time.time() - t0
dest = cmd("NAMING LOOKUP NAME=" + echo).split("VALUE=")[1].encode()
line = b"3.0 rawbench " + dest + b"\n"
out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(2)
for i in range(60):
    out.sendto(line + b"warm", ("127.0.0.1", sam_udp))
    try:
        u.recvfrom(65536); break
    except socket.timeout:
        pass
time.sleep(2.5)
u.settimeout(0.2)
try:
    while True: u.recvfrom(65536)
except socket.timeout:
    pass
rng = random.Random(os.getpid())
sizes = [rng.choice([1, 16, 100, 512, 1000, 1400, 4000, 7000]) for _ in range(n)]
sent, got, rtts = {}, set(), []
u.setblocking(False)
def drain():
    while True:
        try: d, _ = u.recvfrom(65536)
        except BlockingIOError: return
        pl = d[d.index(b"\n") + 1:]
        seq, = struct.unpack(">I", pl[:4])
        if seq in sent and sent[seq][0] == pl and seq not in got:
            got.add(seq); rtts.append(time.time() - sent[seq][1])
for i in range(n):
    pl = struct.pack(">I", i) + os.urandom(sizes[i] + 4)
    sent[i] = (pl, time.time()); out.sendto(line + pl, ("127.0.0.1", sam_udp))
    if i % 20 == 19: time.sleep(0.02)
    drain()
end = time.time() + 15
while time.time() < end and len(got) < n:
    drain(); time.sleep(0.005)
rtts.sort()
u.setblocking(True); u.settimeout(2)
seq = []
for i in range(100):
    pl = struct.pack(">I", 1_000_000 + i) + b"p" * 96
    t = time.time(); out.sendto(line + pl, ("127.0.0.1", sam_udp))
    try:
        while True:
            d, _ = u.recvfrom(65536)
            if d[d.index(b"\n") + 1:] == pl:
                seq.append(time.time() - t); break
    except socket.timeout:
        pass
seq.sort()
print(json.dumps({"pingpong": {"sent": 100, "received": len(seq), "rtt_ms_p50": round(seq[len(seq) // 2] * 1000, 2) if seq else None},"sent": n, "received": len(got), "loss": round(1 - len(got) / n, 4), "session_s": round(session_s, 2),
                  "rtt_ms_p50": round(rtts[len(rtts) // 2] * 1000, 1) if rtts else None,
                  "rtt_ms_p90": round(rtts[int(len(rtts) * .9)] * 1000, 1) if rtts else None}))
