#!/usr/bin/env bash
# Installs everything kins needs on a fresh Debian machine (run as root): the system tools the
# data plane is built with, then kins itself into a virtual environment at .venv.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
if [ "$(id -u)" -ne 0 ]; then
  echo "kins setup: run as root (it installs packages and builds network namespaces)" >&2
  exit 1
fi
pkgs=(iproute2 iptables ipset nftables nginx-light curl dnsutils iputils-ping net-tools conntrack
      procps psmisc kmod util-linux openssl dnsperf dnsmasq-base wrk python3 python3-venv python3-pip)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# A Python other than Debian's (e.g. pyenv) already has venv and pip.
if python3 -c 'import venv, ensurepip' 2>/dev/null; then
  missing=("${missing[@]/python3-venv}"); missing=("${missing[@]/python3-pip}"); missing=("${missing[@]/python3}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The distribution's nginx must not serve on the host: kins runs nginx inside pods.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet nginx 2>/dev/null; then
  systemctl stop nginx || true
fi
if [ ! -x "$here/.venv/bin/python" ]; then
  python3 -m venv "$here/.venv"
fi
"$here/.venv/bin/python" -m pip install -q --disable-pip-version-check -e "$here[dev]"
