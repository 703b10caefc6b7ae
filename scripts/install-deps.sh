#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs what pairlink needs on a fresh Debian 12 machine: the -dev
# packages (apt-get, as root) and the pinned JS interop packages (npm ci from
# each interop project's package-lock.json). Does nothing for what is already
# there.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(build-essential cmake pkg-config clang libclang-rt-14-dev
      libsodium-dev libssl-dev libsecp256k1-dev libuv1-dev libwebsockets-dev
      libwebsockets-evlib-uv libjansson-dev libsimdjson-dev libsqlite3-dev libprotobuf-c-dev
      protobuf-c-compiler libqrencode-dev libpng-dev libcmocka-dev gcovr
      zbar-tools   # zbarimg: the CLI tests decode the QR codes pairlink draws
      libnats-dev nats-server  # relay --cluster (NATS JetStream) and its test
      openssl)  # the cluster TLS test makes its CA and certificates

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ! command -v node >/dev/null 2>&1; then missing+=(nodejs npm); fi
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: not root; install these packages first: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm ci per interop project, only when its lock file changed since the last
# install (interop/: WalletConnect and js-noise; interop/js-waku/: js-waku and
# js-libp2p 1.9; interop/libp2p3/: js-libp2p 3.x).
for dir in interop interop/js-waku interop/libp2p3; do
  [ -f "$dir/package-lock.json" ] || continue
  stamp=$dir/node_modules/.pl-lock-stamp
  if [ ! -f "$stamp" ] || ! cmp -s "$dir/package-lock.json" "$stamp"; then
    echo "install-deps: npm ci ($dir/)"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    cp "$dir/package-lock.json" "$stamp"
  fi
done
