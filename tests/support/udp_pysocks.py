#!/usr/bin/python3
"""UDP ASSOCIATE through an existing client library: PySocks (Debian's python3-socks),
whose socksocket speaks SOCKS5 UDP when made with SOCK_DGRAM. For the end-to-end tests,
beside udp_client.py (our own RFC 1928 framing).

    udp_pysocks.py PROXY TARGET PORT N

The association is PySocks' own: it asks for it when the socket is bound (its DST is the
domain "0" with the local port), sends to the relay the proxy names, and frames every
datagram itself. TARGET (a datagram echo) is sent to by name (rdns: ATYP 3); replies come
back with the domain source PySocks reads as bytes. Warm up until the echo answers, then N
datagrams of mixed sizes; every reply must name TARGET and carry exactly a payload this
socket sent. An IPv4 TARGET (a virtual address) is connected to as well, and PySocks then
drops replies from any other source itself. Prints one JSON line; exit status 0 when something came back and nothing was
corrupted or misdirected.
"""
import json, os, random, socket, struct, sys, threading, time

import socks

proxy, target, tport, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
host, pport = proxy.rsplit(":", 1)

t0 = time.time()
s = socks.socksocket(socket.AF_INET, socket.SOCK_DGRAM)
s.set_proxy(socks.SOCKS5, host, int(pport), rdns=True)
# No timeout set yet: the association's I2P session may take a while (i2pd: about 20 s
# for a new destination), and PySocks waits for the reply on a blocking socket.
s.bind(("127.0.0.1", 0))
assoc_s = time.time() - t0
try:
    socket.inet_aton(target)
    # A virtual address (automap): connect, so PySocks itself drops replies whose source
    # is not that address and port.
    s.connect((target, tport))
except OSError:
    pass
s.settimeout(2)

warm = None
for i in range(60):
    s.sendto(b"warm%d" % i, (target, tport))
    try:
        warm = s.recvfrom(65536)
        break
    except socket.timeout:
        pass
assert warm, "no echo during warm-up"
_, (src, sport) = warm
src = src.decode() if isinstance(src, bytes) else src
assert src == target, (src, target)
time.sleep(2.5)
s.settimeout(0.2)
while True:  # late warm-up echoes
    try:
        s.recvfrom(65536)
    except socket.timeout:
        break

rng = random.Random(os.getpid())
tag = os.urandom(4)
sent, got, bad = {}, set(), []
done = threading.Event()


def receive():
    s.settimeout(0.5)
    while not done.is_set():
        try:
            pl, (frm, _) = s.recvfrom(65536)
        except socket.timeout:
            continue
        except Exception as e:  # PySocks raises on what it cannot parse
            bad.append("recv: %r" % e)
            continue
        frm = frm.decode() if isinstance(frm, bytes) else frm
        if frm != target:
            bad.append("source %s" % frm)
        elif len(pl) < 8 or pl[4:8] != tag:
            bad.append("not this socket's payload")
        else:
            seq, = struct.unpack(">I", pl[:4])
            if seq not in sent or pl != sent[seq]:
                bad.append("corrupt payload %d" % seq)
            else:
                got.add(seq)


rx = threading.Thread(target=receive)
rx.start()
for i in range(n):
    pl = struct.pack(">I", i) + tag + os.urandom(rng.choice([1, 16, 100, 512, 1000]))
    sent[i] = pl
    s.sendto(pl, (target, tport))
    if i % 10 == 9:
        time.sleep(0.02)
end = time.time() + 15
while time.time() < end and len(got) < n:
    time.sleep(0.05)
done.set()
rx.join()
res = {"client": "pysocks %s" % socks.__version__, "sent": n, "received": len(got),
       "loss": round(1 - len(got) / n, 4), "bad": len(bad), "bad_examples": bad[:3],
       "assoc_s": round(assoc_s, 2), "reply_port": sport}
print(json.dumps(res), flush=True)
s.close()
sys.exit(0 if got and not bad else 1)
