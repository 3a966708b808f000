#!/usr/bin/env python3
"""Builds imprint's release image without a daemon, byte-for-byte reproducibly: one layer holding ROOTFS (the
binary, the glibc it loads, a CA bundle), as an OCI layout, an oci-archive and a docker-archive.

usage: release-image.py ROOTFS OUT_DIR VERSION

SOURCE_DATE_EPOCH is every timestamp (layer entries, config, history). Entries are sorted, owned by 0:0, and the
layer is gzip'd with no name or time in its header, so the same ROOTFS gives the same digests on any machine with
the same zlib. Writes OUT_DIR/layout/ (OCI layout), OUT_DIR/oci.tar and OUT_DIR/docker.tar.
"""
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
import time

ENTRYPOINT = "/usr/local/bin/imprint"


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def sha(data):
    return hashlib.sha256(data).hexdigest()


def layer_tar(rootfs, epoch):
    paths = []
    for dirpath, dirnames, filenames in os.walk(rootfs):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            paths.append(os.path.join(dirpath, name))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(paths, key=lambda p: os.path.relpath(p, rootfs).encode()):
            rel = os.path.relpath(path, rootfs)
            info = tar.gettarinfo(path, arcname=rel)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = epoch
            info.pax_headers = {}
            if info.isreg():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    return buf.getvalue()


def deterministic_tar(files, epoch):
    """A tar of (name, bytes) pairs and directories (name ending in /), in the given order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files:
            info = tarfile.TarInfo(name.rstrip("/"))
            info.mtime = epoch
            info.uid = info.gid = 0
            if name.endswith("/"):
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.mode = 0o644
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def main():
    rootfs, out, version = sys.argv[1:4]
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))

    layer = layer_tar(rootfs, epoch)
    gz = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=gz, mtime=0, compresslevel=9) as f:
        f.write(layer)
    layer_gz = gz.getvalue()

    config = canonical({
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "config": {
            "Entrypoint": [ENTRYPOINT],
            "Env": ["PATH=/usr/local/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"],
            "WorkingDir": "/",
            "Labels": {
                "org.opencontainers.image.title": "imprint",
                "org.opencontainers.image.version": version,
                "org.opencontainers.image.licenses": "Apache-2.0",
                "org.opencontainers.image.created": created,
            },
        },
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + sha(layer)]},
        "history": [{"created": created, "created_by": "ci/release: imprint %s, glibc, CA bundle" % version}],
    })
    manifest = canonical({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + sha(config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + sha(layer_gz),
                    "size": len(layer_gz)}],
        "annotations": {"org.opencontainers.image.version": version},
    })
    index = canonical({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + sha(manifest),
                       "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": version}}],
    })
    layout = canonical({"imageLayoutVersion": "1.0.0"})
    blobs = sorted({sha(b): b for b in (config, manifest, layer_gz)}.items())

    os.makedirs(os.path.join(out, "layout", "blobs", "sha256"), exist_ok=True)
    for digest, data in blobs:
        with open(os.path.join(out, "layout", "blobs", "sha256", digest), "wb") as f:
            f.write(data)
    for name, data in (("oci-layout", layout), ("index.json", index)):
        with open(os.path.join(out, "layout", name), "wb") as f:
            f.write(data)

    oci = [("blobs/", b""), ("blobs/sha256/", b"")] + [("blobs/sha256/" + d, b) for d, b in blobs]
    oci += [("index.json", index), ("oci-layout", layout)]
    with open(os.path.join(out, "oci.tar"), "wb") as f:
        f.write(deterministic_tar(oci, epoch))

    config_name = sha(config) + ".json"
    layer_name = sha(layer) + ".tar"
    docker_manifest = canonical([{"Config": config_name, "RepoTags": ["imprint:" + version], "Layers": [layer_name]}])
    docker = [(config_name, config), (layer_name, layer), ("manifest.json", docker_manifest)]
    with open(os.path.join(out, "docker.tar"), "wb") as f:
        f.write(deterministic_tar(docker, epoch))


if __name__ == "__main__":
    main()
