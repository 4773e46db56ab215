#!/usr/bin/env python3
"""Cold-miss bursts for bench/proxy.sh: N clients released together GET one URL; prints one JSON
line with how many succeeded, each one's time to first byte and to the last, and the bytes.

    burst.py URL N
"""
import http.client
import json
import sys
import threading
import time
import urllib.parse

url, n = sys.argv[1], int(sys.argv[2])
u = urllib.parse.urlsplit(url)
path = u.path + ("?" + u.query if u.query else "")
barrier = threading.Barrier(n)
# Bodies are read only once every client has its first byte: reading 100 bodies at once in
# this one (GIL-bound) process would otherwise delay the first bytes it measures.
first_bytes = threading.Barrier(n, timeout=600)
results = [None] * n


def client(i):
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    conn.connect()
    barrier.wait()
    t0 = time.perf_counter()
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        first = r.read(1)
        ttfb = time.perf_counter() - t0
        size = len(first)
        first_bytes.wait()
        while chunk := r.read(1 << 20):
            size += len(chunk)
        results[i] = {"status": r.status, "ttfb": ttfb, "total": time.perf_counter() - t0, "bytes": size}
    except Exception as e:  # a broken transfer counts as a failure
        first_bytes.abort()
        results[i] = {"status": 0, "error": str(e), "ttfb": 0, "total": 0, "bytes": 0}


threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
for t in threads:
    t.start()
for t in threads:
    t.join()
ok = [r for r in results if r["status"] == 200]
ttfb = sorted(r["ttfb"] for r in ok) or [0]
print(json.dumps({
    "ok": len(ok), "n": n,
    "ttfb_min_ms": ttfb[0] * 1000, "ttfb_p50_ms": ttfb[len(ttfb) // 2] * 1000, "ttfb_max_ms": ttfb[-1] * 1000,
    "total_max_s": max((r["total"] for r in ok), default=0),
    "bytes": sorted({r["bytes"] for r in ok}),
}))
