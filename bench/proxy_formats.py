#!/usr/bin/env python3
"""Section 5 of bench/proxy.sh: warm cache hits through a proxy of each format of issue 16
(NuGet, Composer, Helm, Debian, RPM, CRAN, OPM) against the same request on the hosted
registry the proxy reads from, both in one Arca process (so the ratio is Arca-proxy vs
Arca-hosted; no peer proxy for these formats runs here). One metadata and one content row per
format: wrk requests/s for each, their ratio, and the server's CPU milliseconds per request.

    proxy_formats.py BASE TOKEN PID SECONDS WORKDIR
The proxies' metadata interval is an hour, so every measured request is a cache hit.
"""
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import urllib.request
import zipfile

BASE, TOKEN, PID, SECONDS, WORK = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
AUTH = "Basic " + __import__("base64").b64encode(f"b:{TOKEN}".encode()).decode()


def http(method, path, body=None, headers=None, expect=(200, 201)):
    req = urllib.request.Request(BASE + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        if e.code in expect:
            return e.code, e.read()
        raise SystemExit(f"{method} {path}: {e.code} {e.read()[:300]!r}")


def registry(body):
    http("POST", "/har/api/v1/registry", json.dumps(body).encode(),
         {"x-api-key": TOKEN, "content-type": "application/json"})


def zipped(files):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def tgz(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in files.items():
            data = data.encode() if isinstance(data, str) else data
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


PAYLOAD = os.urandom(256 << 10).hex()  # 512 KiB of content in every package


def multipart(field, filename, data):
    boundary = "benchboundary7d1"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, {"content-type": f"multipart/form-data; boundary={boundary}", "X-NuGet-ApiKey": TOKEN}


def publish():
    """One package per hosted registry; returns {format: (metadata path, content path)} below
    each registry's root, the content path read from the metadata where it differs."""
    put = {"authorization": AUTH}
    nuspec = ('<?xml version="1.0"?><package xmlns="http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd"><metadata>'
              '<id>Bench.Pkg</id><version>1.0.0</version><authors>b</authors><description>bench</description></metadata></package>')
    body, h = multipart("package", "package.nupkg", zipped({"Bench.Pkg.nuspec": nuspec, "content/data.txt": PAYLOAD}))
    http("PUT", "/pkg/bench/h-nuget/nuget/api/v2/package/", body, h)
    comp = zipped({"composer.json": json.dumps({"name": "bench/pkg", "version": "1.0.0", "type": "library"}),
                   "data.txt": PAYLOAD})
    http("PUT", "/pkg/bench/h-composer/composer/bench-pkg-1.0.0.zip", comp, put)
    chart = tgz({"benchchart/Chart.yaml": "apiVersion: v2\nname: benchchart\nversion: 1.0.0\ndescription: bench\n",
                 "benchchart/values.yaml": "x: 1\n", "benchchart/data.txt": PAYLOAD})
    http("POST", "/pkg/bench/h-helm/helm/api/charts", chart, put)
    root = os.path.join(WORK, "deb")
    os.makedirs(f"{root}/DEBIAN", exist_ok=True)
    os.makedirs(f"{root}/usr/share/bench", exist_ok=True)
    open(f"{root}/usr/share/bench/data.txt", "w").write(PAYLOAD)
    open(f"{root}/DEBIAN/control", "w").write(
        "Package: bench-pkg\nVersion: 1.0.0\nArchitecture: all\nMaintainer: B <b@example.com>\nDescription: bench\n")
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", root, f"{WORK}/bench-pkg_1.0.0_all.deb"],
                   check=True, capture_output=True)
    http("PUT", "/pkg/bench/h-debian/debian/bench-pkg_1.0.0_all.deb", open(f"{WORK}/bench-pkg_1.0.0_all.deb", "rb").read(), put)
    top = os.path.join(WORK, "rpmbuild")
    os.makedirs(f"{top}/SPECS", exist_ok=True)
    open(f"{top}/SPECS/b.spec", "w").write(
        "Name: bench-pkg\nVersion: 1.0\nRelease: 1\nSummary: bench\nLicense: MIT\nBuildArch: noarch\n%description\nbench\n"
        f"%install\nmkdir -p %{{buildroot}}/usr/share/bench\necho {PAYLOAD} > %{{buildroot}}/usr/share/bench/data.txt\n"
        "%files\n/usr/share/bench/data.txt\n")
    subprocess.run(["rpmbuild", "--define", f"_topdir {top}", "-bb", f"{top}/SPECS/b.spec"], check=True, capture_output=True)
    http("PUT", "/pkg/bench/h-rpm/rpm/bench-pkg-1.0-1.noarch.rpm",
         open(f"{top}/RPMS/noarch/bench-pkg-1.0-1.noarch.rpm", "rb").read(), put)
    desc = "Package: benchpkg\nVersion: 1.0.0\nTitle: Bench\nDescription: bench.\nLicense: MIT\nAuthor: b\nMaintainer: b <b@example.com>\n"
    http("PUT", "/pkg/bench/h-cran/cran/src/contrib/benchpkg_1.0.0.tar.gz",
         tgz({"benchpkg/DESCRIPTION": desc, "benchpkg/NAMESPACE": "", "benchpkg/R/data.R": f"x <- '{PAYLOAD}'\n"}), put)
    inner = zipped({"src/main.os": PAYLOAD})
    ospx = zipped({"packagedef": '\ufeffОписание.Имя("benchpkg")\n    .Версия("1.0.0")\n    .Автор("b");\n', "content.zip": inner})
    http("POST", "/pkg/bench/h-opm/opm/push", ospx,
         {"FILE-NAME": "benchpkg-1.0.0.ospx", "CHANNEL": "stable", "OAUTH-TOKEN": TOKEN})


def paths(fmt, root):
    """(metadata path, content path) of the published package below registry `root`."""
    if fmt == "nuget":
        return "registration/bench.pkg/index.json", "package/bench.pkg/1.0.0/bench.pkg.1.0.0.nupkg"
    if fmt == "composer":
        _, body = http("GET", f"{root}/p2/bench/pkg.json")
        url = json.loads(body)["packages"]["bench/pkg"][0]["dist"]["url"]
        return "p2/bench/pkg.json", url.split(root + "/", 1)[1]
    if fmt == "helm":
        return "index.yaml", "charts/benchchart-1.0.0.tgz"
    if fmt == "debian":
        _, release = http("GET", f"{root}/dists/stable/Release")
        index = re.search(r"^ \S+\s+\d+ (\S+/Packages)$", release.decode(), re.M).group(1)
        _, body = http("GET", f"{root}/dists/stable/{index}")
        return "dists/stable/InRelease", re.search(r"^Filename: (\S+)", body.decode(), re.M).group(1)
    if fmt == "rpm":
        _, repomd = http("GET", f"{root}/repodata/repomd.xml")
        primary = re.search(r'href="(repodata/[^"]*primary[^"]*)"', repomd.decode()).group(1)
        _, body = http("GET", f"{root}/{primary}")
        xml = __import__("gzip").decompress(body).decode()
        return "repodata/repomd.xml", re.search(r'<location href="([^"]+)"', xml).group(1)
    if fmt == "cran":
        return "src/contrib/PACKAGES", "src/contrib/benchpkg_1.0.0.tar.gz"
    if fmt == "opm":
        return "list.txt", "benchpkg/benchpkg-1.0.0.ospx"
    raise ValueError(fmt)


def cpu():
    f = open(f"/proc/{PID}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def load(url):
    """wrk for SECONDS on one URL: (requests/s, server CPU ms per request)."""
    c0 = cpu()
    out = subprocess.run(["wrk", "-t2", "-c8", f"-d{SECONDS}s", url], check=True, capture_output=True, text=True).stdout
    c1 = cpu()
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise SystemExit(f"{url}: {non2xx.group(1)} error responses")
    return total / SECONDS, (c1 - c0) * 1000 / max(total, 1)


FORMATS = {"nuget": "NUGET", "composer": "COMPOSER", "helm": "HELM", "debian": "DEBIAN", "rpm": "RPM",
           "cran": "CRAN", "opm": "OPM"}
for fmt, kind in FORMATS.items():
    registry({"identifier": f"h-{fmt}", "packageType": kind, "parentRef": "bench", "isPublic": True})
    registry({"identifier": f"p-{fmt}", "packageType": kind, "parentRef": "bench", "isPublic": True,
              "config": {"type": "UPSTREAM", "source": "Custom", "url": f"{BASE}/pkg/bench/h-{fmt}/{fmt}",
                         "authType": "Anonymous", "metadataCacheTTL": 3600}})
publish()
print(f"{'format':<9} {'row':<9} {'hosted req/s':>12} {'proxy req/s':>12} {'ratio':>6}  {'CPU ms/req hosted':>17} {'proxy':>6}")
for fmt in FORMATS:
    hosted, proxied = f"/pkg/bench/h-{fmt}/{fmt}", f"/pkg/bench/p-{fmt}/{fmt}"
    meta, content = paths(fmt, hosted)
    pmeta, pcontent = paths(fmt, proxied) if fmt == "composer" else (meta, content)
    for row, h, p in (("metadata", meta, pmeta), ("content", content, pcontent)):
        for _ in range(2):  # warm: the proxy fetches once, then serves from its cache
            http("GET", f"{proxied}/{p}")
            http("GET", f"{hosted}/{h}")
        hr, hc = load(BASE + f"{hosted}/{h}")
        pr, pc = load(BASE + f"{proxied}/{p}")
        print(f"{fmt:<9} {row:<9} {hr:12.0f} {pr:12.0f} {pr / hr:6.2f}  {hc:17.2f} {pc:6.2f}", flush=True)
