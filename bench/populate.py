"""Fills registries over their native protocols for bench/metadata.sh (standard library only).

usage: populate.py npm  <registry url ending in />  <token or ''>  <package> <versions>
       populate.py pypi <upload url>                <user:token>   <project> <files>
       populate.py cargo <api root>                 <token>        <crate>   <versions>
       populate.py maven <repository root ending in /> <token>       <group:artifact> <versions>
       populate.py nuget <push url>                 <token>        <id>      <versions>
"""
import base64, hashlib, io, json, sys, tarfile, urllib.request, uuid, zipfile


def tgz(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def send(method, url, body, headers):
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    with urllib.request.urlopen(req) as r:
        return r.status


def npm(url, token, name, n):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    for i in range(n):
        v = f"1.0.{i}"
        manifest = {"name": name, "version": v, "description": "bench package", "dependencies": {"left-pad": "^1.0.0"}, "main": "index.js"}
        data = tgz({"package/package.json": json.dumps(manifest).encode(), "package/index.js": b"module.exports = 1;\n"})
        doc = {"_id": name, "name": name, "dist-tags": {"latest": v}, "versions": {v: {**manifest, "_id": f"{name}@{v}",
               "dist": {"shasum": hashlib.sha1(data).hexdigest(),
                        "integrity": "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()}}},
               "_attachments": {f"{name}-{v}.tgz": {"content_type": "application/octet-stream", "data": base64.b64encode(data).decode(), "length": len(data)}}}
        send("PUT", url + name, json.dumps(doc).encode(), headers)


def wheel(name, v):
    dist = name.replace("-", "_")
    info = f"{dist}-{v}.dist-info"
    meta = f"Metadata-Version: 2.1\nName: {name}\nVersion: {v}\nRequires-Python: >=3.8\n"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(f"{dist}.py", "X = 1\n")
        z.writestr(f"{info}/METADATA", meta)
        z.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        z.writestr(f"{info}/RECORD", "")
    return f"{dist}-{v}-py3-none-any.whl", buf.getvalue()


def pypi(url, cred, name, n):
    auth = "Basic " + base64.b64encode(cred.encode()).decode()
    for i in range(n):
        v = f"1.0.{i}"
        fname, data = wheel(name, v)
        boundary = uuid.uuid4().hex
        parts = []
        for k, val in {":action": "file_upload", "name": name, "version": v, "filetype": "bdist_wheel", "pyversion": "py3",
                       "metadata_version": "2.1", "requires_python": ">=3.8", "sha256_digest": hashlib.sha256(data).hexdigest()}.items():
            parts.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{val}\r\n".encode())
        parts.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"content\"; filename=\"{fname}\"\r\nContent-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
        parts.append(f"--{boundary}--\r\n".encode())
        send("POST", url, b"".join(parts), {"content-type": f"multipart/form-data; boundary={boundary}", "authorization": auth})


def pypi_dir(directory, name, n):
    for i in range(n):
        fname, data = wheel(name, f"1.0.{i}")
        with open(f"{directory}/{fname}", "wb") as f:
            f.write(data)


def cargo(api, token, name, n):
    for i in range(n):
        v = f"1.0.{i}"
        toml = f'[package]\nname = "{name}"\nversion = "{v}"\nedition = "2021"\n'.encode()
        data = tgz({f"{name}-{v}/Cargo.toml": toml, f"{name}-{v}/src/lib.rs": b""})
        meta = json.dumps({"name": name, "vers": v, "deps": [{"name": "serde", "version_req": "^1", "features": [], "optional": False,
                                                                "default_features": True, "target": None, "kind": "normal"}], "features": {}}).encode()
        body = len(meta).to_bytes(4, "little") + meta + len(data).to_bytes(4, "little") + data
        send("PUT", api + "/api/v1/crates/new", body, {"authorization": token})


def maven(root, token, coords, n):
    group, artifact = coords.split(":")
    base = root + group.replace(".", "/") + "/" + artifact
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bench.txt", "bench")
    jar = buf.getvalue()
    for i in range(n):
        v = f"1.0.{i}"
        pom = (f'<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion><groupId>{group}</groupId>'
               f'<artifactId>{artifact}</artifactId><version>{v}</version></project>').encode()
        send("PUT", f"{base}/{v}/{artifact}-{v}.pom", pom, {"x-api-key": token})
        send("PUT", f"{base}/{v}/{artifact}-{v}.jar", jar, {"x-api-key": token})


def nuget(url, token, pid, n):
    for i in range(n):
        v = f"1.0.{i}"
        spec = (f'<?xml version="1.0"?><package><metadata><id>{pid}</id><version>{v}</version><authors>bench</authors>'
                f'<description>bench package</description><dependencies><group targetFramework="netstandard2.0">'
                f'<dependency id="Bench.Dep" version="1.0" /></group></dependencies></metadata></package>').encode()
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr(f"{pid}.nuspec", spec)
            z.writestr("lib/netstandard2.0/bench.txt", "bench")
        send("PUT", url, buf.getvalue(), {"x-nuget-apikey": token, "content-type": "application/octet-stream"})


if __name__ == "__main__":
    kind = sys.argv[1]
    if kind == "pypi-dir":
        pypi_dir(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        {"npm": npm, "pypi": pypi, "cargo": cargo, "maven": maven, "nuget": nuget}[kind](sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
