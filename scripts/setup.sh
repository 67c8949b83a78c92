#!/usr/bin/env bash
# Installs the Debian 12 packages hourglass needs, if any is missing. Idempotent; run as root
# (or with sudo available).
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  libtorch-dev libopencv-dev libhdf5-dev libdnnl-dev
  nlohmann-json3-dev libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev
  libplplot-dev plplot-driver-cairo zlib1g-dev libonnx-dev libprotobuf-dev libgloo-dev
  libcpp-httplib-dev curl chromium chromium-driver python3-numpy python3-torch python3-opencv clang-14 libfuzzer-14-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "setup: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
