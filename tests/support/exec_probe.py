#!/usr/bin/env python3
"""Leak probe for `eepsocks exec` (tests/exec.rs): every way out a program could try,
aimed at the addresses given (a sink the test owns). Prints one JSON object: for each
attempt, "ok" (it got through: a leak), or the error, and how long it took."""
import json, socket, sys, time

v4, v6 = sys.argv[1], sys.argv[2]
TIMEOUT = float(sys.argv[3]) if len(sys.argv) > 3 else 5.0
out = {}

def attempt(name, f):
    t = time.monotonic()
    try:
        r = f()
        out[name] = {"result": "ok" if r is None else r, "secs": time.monotonic() - t}
    except Exception as e:  # the failure is the expected outcome
        out[name] = {"result": type(e).__name__ + ": " + str(e), "secs": time.monotonic() - t}

def tcp(fam, addr):
    def f():
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(TIMEOUT)
        s.connect(addr)
        # A redirected connection is accepted then closed: only data proves a way out.
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = s.recv(100)
        if not data:
            raise ConnectionError("closed without an answer")
        return None
    return f

def dns_query(name):
    q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00\x00\x01\x00\x01"

def udp_dns():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(TIMEOUT)
    s.sendto(dns_query("example.com"), (v4, 53))
    data, _ = s.recvfrom(512)
    rcode = data[3] & 0xF
    ancount = int.from_bytes(data[6:8], "big")
    if ancount == 0:
        raise OSError("DNS answered rcode %d with no address" % rcode)
    return None

def udp_other():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(TIMEOUT)
    s.connect((v4, 443))
    s.send(b"x")
    s.recv(10)
    return None

def gai():
    socket.getaddrinfo("example.com", 80)
    return None

def icmp():
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    s.sendto(b"\x08\x00\xf7\xff\x00\x00\x00\x00", (v4, 0))
    return None

attempt("tcp4", tcp(socket.AF_INET, (v4, 80)))
attempt("tcp6", tcp(socket.AF_INET6, (v6, 80)))
attempt("udp_dns", udp_dns)
attempt("udp_other", udp_other)
attempt("getaddrinfo", gai)
attempt("icmp_raw", icmp)
attempt("host_socks", tcp(socket.AF_INET, ("127.0.0.1", 4447)))
attempt("host_stub", tcp(socket.AF_INET, ("127.0.0.53", 53)))
print(json.dumps(out))
