#!/usr/bin/env python3
"""Lists the referrers of SUBJECT as an OCI 1.1 client does (distribution spec v1.1, "Listing Referrers" and the
"Referrers Tag Schema"): GET /v2/<name>/referrers/<digest>; when the registry has no such API (404), the index
under the tag <alg>-<ref>. Prints one line per referrer: "DIGEST ARTIFACT_TYPE PREDICATE_TYPE". An independent
client: it knows nothing of imprint.

usage: find_referrers.py HOST REPO SUBJECT_DIGEST
"""
import json
import sys
import urllib.error
import urllib.request

host, repo, subject = sys.argv[1:4]
base = "http://%s/v2/%s" % (host, repo)
accept = {"Accept": "application/vnd.oci.image.index.v1+json"}


def get(url):
    with urllib.request.urlopen(urllib.request.Request(url, headers=accept)) as r:
        return json.loads(r.read())


try:
    index = get(base + "/referrers/" + subject)
except urllib.error.HTTPError as e:
    if e.code != 404:
        raise
    try:
        index = get(base + "/manifests/" + subject.replace(":", "-"))
    except urllib.error.HTTPError as e2:
        if e2.code != 404:
            raise
        index = {"manifests": []}
for m in index.get("manifests", []):
    print(m["digest"], m.get("artifactType", "-"), (m.get("annotations") or {}).get("in-toto.io/predicate-type", "-"))
