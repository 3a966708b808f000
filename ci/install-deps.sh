#!/usr/bin/env bash
# Installs everything imprint's tests and benchmarks need, from Debian's packages and PyPI.
# Idempotent: packages already present are not fetched again.
set -euo pipefail

packages=(
  libssl-dev zlib1g-dev libre2-dev pkg-config  # the C libraries imprint links
  buildah skopeo umoci                    # real image builders and copiers for interoperability tests
  mtree-netbsd hashdeep libarchive-tools rsync  # mtree, hashdeep, bsdtar; rsync for the stale-COPY scenarios
  bzip2 xz-utils                          # streams of other compressions, which imprint names
  patch                                   # applies the unified diffs diff reports (the oracle for their hunks)
  docker-registry apache2-utils           # a real OCI registry on 127.0.0.1 and htpasswd
  in-toto                                 # peer for the step-runner benchmark
  chromium                                # renders the HTML diff report in tests
  python3 python3-jsonschema python3-yaml time hyperfine         # schema validation, /usr/bin/time for peak memory
  podman runc busybox-static              # real containers: podman's Docker-compatible service for the docker CLI
  python3-gunicorn                        # a real prefork server (copied into the test containers with CPython)
  docker-compose containerd               # compose projects through podman's service; a node's container runtime
  prometheus                              # scrapes imprint watch and evaluates its alert rule (and promtool)
  nginx-light                             # a real origin and a proxy_cache in front of it (verify --served)
  python3-venv git                        # the venv for the supply-chain peers below; git for checkout scenarios
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The python3 on PATH may not be Debian's; make sure it has jsonschema, PyYAML and Flask (the README's health handler).
python3 -c 'import jsonschema, yaml, flask' 2>/dev/null || python3 -m pip install -q jsonschema pyyaml flask

# Supply-chain peers, pinned, in their own venv (IMPRINT_PEERS_VENV, default ~/.cache/imprint/peers-venv): in-toto's
# reference implementation (in-toto-run, in-toto-verify), the in-toto attestation bindings, securesystemslib (DSSE)
# sarif-tools and packageurl-python (reads the package URLs of attestations). The tests find it at the same path.
venv=${IMPRINT_PEERS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/imprint/peers-venv}
peers=(in-toto==3.1.0 in-toto-attestation==0.9.3 securesystemslib==1.6.0 sarif-tools==3.0.5 packageurl-python==0.17.6 jsonschema)
if ! "$venv/bin/python" -c 'import in_toto, in_toto_attestation, securesystemslib, sarif, packageurl, jsonschema' 2>/dev/null; then
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q "${peers[@]}"
fi

