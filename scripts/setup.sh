#!/usr/bin/env bash
# Installs everything repq needs on Debian 12, then the Node package used for ONNX Runtime
# cross-checks. Idempotent and non-interactive; run as root or as a user with sudo.
# Usage: scripts/setup.sh [--system|--node]   (default both; --node only needs npm, and only
# the tests need it, so CI runs it beside the first build)
set -euo pipefail
cd "$(dirname "$0")/.."
part="${1:-all}"
case "$part" in all|--system|--node) ;; *) echo "usage: $0 [--system|--node]" >&2; exit 2 ;; esac

packages=(
  build-essential cmake ninja-build git pkg-config      # toolchain
  libonnx-dev libprotobuf-dev protobuf-compiler         # ONNX model I/O
  libeigen3-dev                                         # GEMM for the executor
  libcli11-dev libspdlog-dev nlohmann-json3-dev         # CLI, logging, JSON
  libjpeg-dev libstb-dev                                # image decoding
  libgtest-dev                                          # tests
  nodejs npm                                            # ONNX Runtime (onnxruntime-node) cross-checks
  chromium                                              # renders the HTML report in a test
  clang libclang-rt-14-dev                              # libFuzzer targets (bench/fuzz.sh)
)

install_system() {
  local sudo_cmd=() missing=() p
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  # A newer Node.js from elsewhere (e.g. nodesource) is fine: keep it.
  if command -v node >/dev/null && command -v npm >/dev/null; then
    missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
  fi
  read -r -a missing <<<"${missing[*]}"
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  fi
}

install_node() {
  # onnxruntime-node's post-install step downloads CUDA files; skip it (CPU only here).
  if [ -f tools/ort/package.json ] && [ ! -d tools/ort/node_modules/onnxruntime-node ]; then
    echo "setup: installing onnxruntime-node into tools/ort"
    (cd tools/ort && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error)
  fi
}

[ "$part" = --node ] || install_system
[ "$part" = --system ] || install_node
echo "setup: done ($part)"
