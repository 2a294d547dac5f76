#!/usr/bin/env python3
"""Build an OCI image layout for the pull tests (no network, no registry).

oci_image.py OUT TAG [--config JSON] [--compress gzip|none|zstd]
             (--layer-dir DIR | --layer-spec JSON)...

--layer-dir tars a directory (numeric owners kept); --layer-spec builds a layer from a
JSON list of entries {"name", "type": file|dir|symlink|hardlink, "data", "target", "mode"}
(hostile names and whiteouts included as given). The image config gets the --config
object as its "config" and the diff_ids of the layers.
"""
import argparse, gzip, hashlib, io, json, os, subprocess, sys, tarfile


def tar_dir(path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(dirs) + sorted(files):
                full = os.path.join(root, name)
                t.add(full, arcname=os.path.relpath(full, path), recursive=False)
    return buf.getvalue()


def tar_spec(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for e in entries:
            ti = tarfile.TarInfo(e["name"])
            ti.mode = e.get("mode", 0o644)
            data = None
            kind = e.get("type", "file")
            if kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, e.get("mode", 0o755)
            elif kind == "symlink":
                ti.type, ti.linkname = tarfile.SYMTYPE, e["target"]
            elif kind == "hardlink":
                ti.type, ti.linkname = tarfile.LNKTYPE, e["target"]
            else:
                data = e.get("data", "").encode()
                ti.size = len(data)
            t.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def compress(raw, how):
    if how == "gzip":
        return gzip.compress(raw, mtime=0), "application/vnd.oci.image.layer.v1.tar+gzip"
    if how == "zstd":
        out = subprocess.run(["zstd", "-q", "-c"], input=raw, stdout=subprocess.PIPE, check=True).stdout
        return out, "application/vnd.oci.image.layer.v1.tar+zstd"
    return raw, "application/vnd.oci.image.layer.v1.tar"


def put_blob(out, data):
    h = hashlib.sha256(data).hexdigest()
    os.makedirs(os.path.join(out, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(out, "blobs", "sha256", h), "wb") as f:
        f.write(data)
    return "sha256:" + h


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("tag")
    ap.add_argument("--config", default="{}")
    ap.add_argument("--compress", default="gzip")
    ap.add_argument("--layer-dir", action="append", default=[], dest="layers", type=lambda s: ("dir", s))
    ap.add_argument("--layer-spec", action="append", dest="layers", type=lambda s: ("spec", s))
    a = ap.parse_args()
    layers, diff_ids = [], []
    for kind, arg in a.layers:
        raw = tar_dir(arg) if kind == "dir" else tar_spec(json.loads(arg))
        data, mt = compress(raw, a.compress)
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        layers.append({"mediaType": mt, "digest": put_blob(a.out, data), "size": len(data)})
    config = {"architecture": "amd64", "os": "linux", "config": json.loads(a.config),
              "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    cdata = json.dumps(config).encode()
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": put_blob(a.out, cdata), "size": len(cdata)},
                "layers": layers}
    mdata = json.dumps(manifest).encode()
    mdesc = {"mediaType": manifest["mediaType"], "digest": put_blob(a.out, mdata), "size": len(mdata),
             "annotations": {"org.opencontainers.image.ref.name": a.tag}}
    index_path = os.path.join(a.out, "index.json")
    index = {"schemaVersion": 2, "manifests": []}
    if os.path.exists(index_path):
        with open(index_path) as f:
            index = json.load(f)
    index["manifests"] = [m for m in index["manifests"]
                          if m.get("annotations", {}).get("org.opencontainers.image.ref.name") != a.tag] + [mdesc]
    with open(os.path.join(a.out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(index_path, "w") as f:
        json.dump(index, f)
    print(mdesc["digest"])


if __name__ == "__main__":
    sys.exit(main())
