#!/usr/bin/env bash
# Installs everything imprint's tests and benchmarks need, from Debian's packages and PyPI.
# Idempotent: packages already present are not fetched again.
set -euo pipefail

packages=(
  libssl-dev zlib1g-dev libre2-dev pkg-config  # the C libraries imprint links
  buildah skopeo umoci                    # real image builders and copiers for interoperability tests
  mtree-netbsd hashdeep libarchive-tools  # mtree, hashdeep, bsdtar
  docker-registry apache2-utils           # a real OCI registry on 127.0.0.1 and htpasswd
  in-toto                                 # peer for the step-runner benchmark
  chromium                                # renders the HTML diff report in tests
  python3 python3-jsonschema python3-yaml time hyperfine         # schema validation, /usr/bin/time for peak memory
  podman runc busybox-static              # real containers: podman's Docker-compatible service for the docker CLI
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
