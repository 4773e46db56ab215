#!/usr/bin/env python3
"""A counting upstream for bench/proxy.sh: serves an OCI repository (`lib/img`), generic files
(`/files/...`) and an npm package (`/npm/<name>`) from a directory, and reports how often each
path was asked and how many body bytes went out (`GET /_stats`). Bodies are streamed from disk.

    upstream.py PORT DIR
DIR holds `blobs/<hex>` (OCI blobs and manifests by sha256), `files/...` and `npm/<name>.json`.
"""
import hashlib
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, ROOT = int(sys.argv[1]), sys.argv[2]
LOCK = threading.Lock()
HITS, BYTES = {}, {}
RATE = [0]  # bytes per second per transfer (0: as fast as possible); set with GET /_rate?mib=N
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def hit(self):
        with LOCK:
            HITS[self.path] = HITS.get(self.path, 0) + 1

    def sent(self, n):
        with LOCK:
            BYTES[self.path] = BYTES.get(self.path, 0) + n

    def do_HEAD(self):
        self.answer(head=True)

    def do_GET(self):
        self.answer(head=False)

    def answer(self, head):
        if self.path.startswith("/_rate"):
            RATE[0] = int(float(self.path.split("mib=")[1]) * (1 << 20)) if "mib=" in self.path else 0
            return self.send(200, b"{}", "application/json", head)
        if self.path == "/_stats":
            body = json.dumps({"hits": HITS, "bytes": BYTES}).encode()
            return self.send(200, body, "application/json", head)
        self.hit()
        p = self.path.split("?")[0]
        if p == "/v2/":
            return self.send(200, b"{}", "application/json", head)
        if p.startswith("/v2/lib/img/"):
            kind, ref = p[len("/v2/lib/img/"):].split("/", 1)
            if kind == "manifests" and not ref.startswith("sha256:"):
                tag = os.path.join(ROOT, "tags", ref)
                if not os.path.exists(tag):
                    return self.send(404, b"", "text/plain", head)
                ref = open(tag).read().strip()
            path = os.path.join(ROOT, "blobs", ref.removeprefix("sha256:"))
            ctype = MANIFEST if kind == "manifests" else "application/octet-stream"
            return self.file(path, ctype, head, {"Docker-Content-Digest": ref})
        if p.startswith("/files/"):
            return self.file(os.path.join(ROOT, p.lstrip("/")), "application/octet-stream", head, {})
        if p.startswith("/npm/"):
            rest = p[len("/npm/"):]
            if "/-/" in rest:
                return self.file(os.path.join(ROOT, "npm", rest.split("/-/")[1]), "application/octet-stream", head, {})
            path = os.path.join(ROOT, "npm", rest + ".json")
            if not os.path.exists(path):
                return self.send(404, b"", "text/plain", head)
            body = open(path, "rb").read()
            etag = '"%s"' % hashlib.sha256(body).hexdigest()[:16]
            if self.headers.get("If-None-Match") == etag:
                return self.send(304, b"", "application/json", True, {"ETag": etag})
            return self.send(200, body, "application/json", head, {"ETag": etag})
        self.send(404, b"", "text/plain", head)

    def send(self, status, body, ctype, head, extra=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not head and status != 304:
            self.wfile.write(body)
            self.sent(len(body))

    def file(self, path, ctype, head, extra):
        if not os.path.isfile(path):
            return self.send(404, b"", "text/plain", head)
        size = os.path.getsize(path)
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(size))
        for k, v in extra.items():
            self.send_header(k, v)
        self.end_headers()
        if head:
            return
        start, done = time.monotonic(), 0
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                self.wfile.write(chunk)
                self.sent(len(chunk))
                done += len(chunk)
                if RATE[0]:
                    ahead = done / RATE[0] - (time.monotonic() - start)
                    if ahead > 0:
                        time.sleep(ahead)


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
