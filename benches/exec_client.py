#!/usr/bin/env python3
"""The client of the bench's exec part (benches/compare/exec.rs): HTTP GETs to a site, by
plain sockets (run under `eepsocks exec`) or through SOCKS5 with the name (the same
eepsocks, the same router). Prints one JSON object: ttfb_ms (each on a new connection,
request sent to first byte of the answer, connect included), bulk MiB/s of one large
file, setup/s (complete small GETs one after another for `secs`)."""
import json, socket, struct, sys, time

mode, host, n, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])

def connect():
    if mode == "direct":
        return socket.create_connection((host, 80), timeout=60)
    s = socket.create_connection(("127.0.0.1", 4447), timeout=60)
    s.sendall(b"\x05\x01\x00")
    assert s.recv(2) == b"\x05\x00"
    name = host.encode()
    s.sendall(b"\x05\x01\x00\x03" + bytes([len(name)]) + name + struct.pack(">H", 80))
    head = b""
    while len(head) < 10:
        chunk = s.recv(10 - len(head))
        if not chunk:
            raise ConnectionError("SOCKS closed")
        head += chunk
    if head[1] != 0:
        raise ConnectionError("SOCKS reply %d" % head[1])
    return s

def get(path, first_only=False):
    t0 = time.monotonic()
    s = connect()
    s.sendall(b"GET /" + path.encode() + b" HTTP/1.0\r\n\r\n")
    data = s.recv(65536)
    if not data:
        raise ConnectionError("no answer")
    first = time.monotonic() - t0
    total = len(data)
    while not first_only:
        d = s.recv(1 << 20)
        if not d:
            break
        total += len(d)
    s.close()
    return first, total, time.monotonic() - t0

# Warm: the first stream of a new identity carries its first handshakes.
for _ in range(3):
    try:
        get("small")
        break
    except OSError:
        time.sleep(1)
ttfb = sorted(get("small")[0] * 1000 for _ in range(n))
_, size, took = get("big")
done, t0 = 0, time.monotonic()
while time.monotonic() - t0 < secs:
    get("small")
    done += 1
print(json.dumps({
    "ttfb_ms": ttfb[len(ttfb) // 2],
    "bulk_mib_s": size / took / (1 << 20),
    "setup_per_s": done / (time.monotonic() - t0),
}))
