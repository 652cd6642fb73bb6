#!/usr/bin/env bash
# Installs everything kins needs on a fresh Debian machine (run as root):
# the system tools the data plane is built with, then the Python package.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
pkgs=(iproute2 iptables nftables nginx-light curl dnsutils iputils-ping net-tools
      conntrack procps psmisc kmod)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# nginx from the distribution must not run on the host: kins starts it inside pods.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet nginx 2>/dev/null; then
  systemctl stop nginx || true
fi
python3 -m pip install -q --disable-pip-version-check -e "$here[dev]"
