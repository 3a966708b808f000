#!/bin/sh
# Installs a verified imprint release (Linux x86_64, any glibc distribution):
#
#   curl -fsSL https://github.com/imprint/imprint/releases/download/v0.1.0/install.sh | sh
#
# Downloads SHA256SUMS, its Ed25519 signature and the release tarball; checks the signature against the public key
# pinned below and the tarball against SHA256SUMS; only then installs bin/imprint, the man page and completions
# into the prefix. Anything that does not check out stops the install and nothing is installed (exit 2).
#
# Environment:
#   IMPRINT_VERSION      the release to install (default: 0.1.0)
#   IMPRINT_BASE_URL     where the release files are (default: the GitHub release of IMPRINT_VERSION); a mirror,
#                        an internal artifact store or file:///path work the same
#   IMPRINT_PREFIX       install prefix (default: /usr/local when writable, else $HOME/.local)
#   IMPRINT_PUBKEY_FILE  verify with this Ed25519 public key (PEM) instead of the pinned release key: for releases
#                        you build and sign yourself with ci/release
set -eu

version=${IMPRINT_VERSION:-0.1.0}
base=${IMPRINT_BASE_URL:-https://github.com/imprint/imprint/releases/download/v$version}
base=${base%/}
name=imprint-$version-linux-x86_64

# The release signing key (ci/imprint-release.pub).
pinned_key='-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAX5uBjIkco7CGmfg0F5FN45oZmpAUfz27KeQU+kZhEJk=
-----END PUBLIC KEY-----'

fail() {
  echo "install.sh: error: $*" >&2
  exit 2
}
say() { echo "install.sh: $*" >&2; }

[ "$(uname -s)" = Linux ] || fail "imprint releases are for Linux; this is $(uname -s) (build from source: swift build -c release)"
case "$(uname -m)" in
  x86_64 | amd64) ;;
  *) fail "imprint releases are for x86_64; this is $(uname -m) (build from source: swift build -c release)" ;;
esac
command -v openssl >/dev/null 2>&1 || fail "openssl (3.0 or later) is needed to check the release signature"

if [ -n "${IMPRINT_PREFIX:-}" ]; then
  prefix=$IMPRINT_PREFIX
elif [ -w /usr/local ] || [ "$(id -u)" = 0 ]; then
  prefix=/usr/local
else
  prefix=$HOME/.local
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/imprint-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

fetch() {
  if command -v curl >/dev/null 2>&1; then
    curl -fsSL --retry 3 -o "$2" "$1" || fail "cannot download $1"
  elif command -v wget >/dev/null 2>&1; then
    wget -q -O "$2" "$1" || fail "cannot download $1"
  else
    fail "curl or wget is needed to download $1"
  fi
}

say "downloading imprint $version from $base"
fetch "$base/SHA256SUMS" "$tmp/SHA256SUMS"
fetch "$base/SHA256SUMS.sig" "$tmp/SHA256SUMS.sig"
fetch "$base/$name.tar.gz" "$tmp/$name.tar.gz"

# 1. The signature of SHA256SUMS, by the pinned key.
if [ -n "${IMPRINT_PUBKEY_FILE:-}" ]; then
  cp "$IMPRINT_PUBKEY_FILE" "$tmp/key.pub" || fail "cannot read IMPRINT_PUBKEY_FILE=$IMPRINT_PUBKEY_FILE"
else
  printf '%s\n' "$pinned_key" > "$tmp/key.pub"
fi
openssl pkeyutl -verify -pubin -inkey "$tmp/key.pub" -rawin -in "$tmp/SHA256SUMS" -sigfile "$tmp/SHA256SUMS.sig" \
  >"$tmp/verify.log" 2>&1 \
  || fail "the signature of $base/SHA256SUMS does not verify with the release key: not installing ($(head -n 1 "$tmp/verify.log"))"

# 2. The tarball's checksum, from the signed SHA256SUMS.
expected=$(awk -v f="$name.tar.gz" '$2 == f || $2 == "*" f { print $1 }' "$tmp/SHA256SUMS")
[ -n "$expected" ] || fail "SHA256SUMS does not list $name.tar.gz: not installing"
actual=$(openssl dgst -sha256 -r "$tmp/$name.tar.gz" | cut -d ' ' -f 1)
[ "$expected" = "$actual" ] \
  || fail "$name.tar.gz does not match SHA256SUMS (sha256 $actual, signed $expected): not installing"

# 3. Unpack, check the binary runs here, then put each file in place with a rename.
mkdir "$tmp/x"
tar -xzf "$tmp/$name.tar.gz" -C "$tmp/x" || fail "cannot unpack $name.tar.gz"
src=$tmp/x/$name
"$src/bin/imprint" --version >/dev/null 2>&1 || fail "the imprint binary does not run on this machine"
place() { # place SOURCE DEST MODE
  mkdir -p "$(dirname "$2")" || fail "cannot create $(dirname "$2")"
  cp "$1" "$2.tmp.$$" && chmod "$3" "$2.tmp.$$" && mv -f "$2.tmp.$$" "$2" || fail "cannot write $2"
}
place "$src/bin/imprint" "$prefix/bin/imprint" 0755
place "$src/share/man/man1/imprint.1" "$prefix/share/man/man1/imprint.1" 0644
place "$src/share/bash-completion/completions/imprint" "$prefix/share/bash-completion/completions/imprint" 0644
place "$src/share/zsh/site-functions/_imprint" "$prefix/share/zsh/site-functions/_imprint" 0644
place "$src/share/fish/vendor_completions.d/imprint.fish" "$prefix/share/fish/vendor_completions.d/imprint.fish" 0644
say "installed $("$prefix/bin/imprint" --version) to $prefix/bin/imprint (signature and sha256 $actual checked)"
case ":$PATH:" in
  *":$prefix/bin:"*) ;;
  *) say "note: $prefix/bin is not on PATH" ;;
esac
