#!/usr/bin/env python3
"""Pushes a DSSE envelope to a registry as an OCI referrer of SUBJECT, without any check (a test's way to attach a
mismatched attestation), the way the OCI distribution spec v1.1 tells a client to on a registry without the
referrers API: the blob, the empty config, the artifact manifest with `subject`, and the referrers index under the
tag schema `<alg>-<ref>`, pulled first and extended (never replaced). An independent client: it knows nothing of
imprint.

usage: push_referrer.py HOST REPO SUBJECT_DIGEST SUBJECT_SIZE ENVELOPE PREDICATE_TYPE
"""
import hashlib
import json
import sys
import urllib.error
import urllib.request

host, repo, subject, size, envelope_path, predicate = sys.argv[1:7]
base = "http://%s/v2/%s" % (host, repo)


def request(method, url, data=None, headers=None):
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    with urllib.request.urlopen(req) as r:
        return r.status, dict(r.headers), r.read()


def push_blob(data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    _, headers, _ = request("POST", base + "/blobs/uploads/")
    location = headers["Location"]
    if location.startswith("/"):
        location = "http://%s%s" % (host, location)
    sep = "&" if "?" in location else "?"
    request("PUT", location + sep + "digest=" + digest, data, {"Content-Type": "application/octet-stream"})
    return digest


def put_manifest(ref, doc, media_type):
    data = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
    request("PUT", base + "/manifests/" + ref, data, {"Content-Type": media_type})
    return "sha256:" + hashlib.sha256(data).hexdigest(), len(data)


envelope = open(envelope_path, "rb").read()
layer = push_blob(envelope)
config = push_blob(b"{}")
dsse = "application/vnd.dsse.envelope.v1+json"
artifact = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "artifactType": dsse,
    "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config, "size": 2},
    "layers": [{"mediaType": dsse, "digest": layer, "size": len(envelope)}],
    "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": subject, "size": int(size)},
    "annotations": {"in-toto.io/predicate-type": predicate},
}
data = json.dumps(artifact, separators=(",", ":"), sort_keys=True).encode()
digest, length = put_manifest("sha256:" + hashlib.sha256(data).hexdigest(), artifact, artifact["mediaType"])
tag = subject.replace(":", "-")   # the referrers tag schema: <alg>-<ref>
index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []}
try:
    _, _, body = request("GET", base + "/manifests/" + tag, headers={"Accept": index["mediaType"]})
    index = json.loads(body)
except urllib.error.HTTPError as e:
    if e.code != 404:
        raise
index["manifests"].append({"mediaType": artifact["mediaType"], "digest": digest, "size": length, "artifactType": dsse,
                           "annotations": {"in-toto.io/predicate-type": predicate}})
put_manifest(tag, index, index["mediaType"])
print(digest)
