#!/usr/bin/env bash
# Install everything envrun needs to build, test and benchmark on Debian 12.
# Idempotent: packages already present are skipped; apt-get update runs only
# when something is missing.
set -euo pipefail

BUILD_PKGS=(build-essential cmake pkg-config git
  libseccomp-dev libcap-dev libyaml-cpp-dev libcurl4-openssl-dev catch2
  libarchive-dev libssl-dev libzstd-dev libsqlite3-dev nlohmann-json3-dev
  libcli11-dev libcpp-httplib-dev)   # libcpp-httplib-dev: envrun-api, the management API
TEST_PKGS=(busybox-static iproute2 procps python3 util-linux curl sqlite3 dash tar
  docker-registry skopeo zstd   # t_pull: a real registry on loopback, pushed to by skopeo
  redis-server redis-tools      # t_ckpt_servers: a real server checkpointed and restored
  python3-yaml                 # t_api_openapi: doc/openapi.yaml parsed
  chromium chromium-driver python3-selenium openssl)   # t_console: the web console in headless Chromium
EXTRA_PKGS=(runc podman fakechroot proot umoci)   # real clients / anchors for tests and benchmarks

want=("${BUILD_PKGS[@]}" "${TEST_PKGS[@]}")
if [[ "${1:-}" == "--all" || "${ENVRUN_DEPS_ALL:-0}" == "1" ]]; then
  want+=("${EXTRA_PKGS[@]}")
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
  echo "deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "deps: ok"
