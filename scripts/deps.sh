#!/usr/bin/env bash
# Installs the Debian 12 packages tokenmill builds, tests and benchmarks with. Idempotent.
# Runs apt-get through sudo when not root.
set -euo pipefail
packages=(
  build-essential cmake pkg-config git clang-format
  libarchive-dev liblmdb-dev lmdb-utils libxxhash-dev libzstd-dev libcjson-dev libinih-dev
  libpcre2-dev libcmocka-dev libopenmpi-dev libopenblas-dev libseccomp-dev
  zstd xz-utils bzip2 gzip python3 procps util-linux
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#packages[@]} packages present"
  exit 0
fi
SUDO=
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
echo "deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
