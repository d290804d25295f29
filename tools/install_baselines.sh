#!/usr/bin/env bash
# Usage: tools/install_baselines.sh
# Installs the classical codecs that `codec bench` measures against: opusenc/opusdec (Debian
# package opus-tools) and c2enc/c2dec (package codec2), the headless browser in which the
# tests open bench's listening page (package chromium), and GNU time, with which
# bench/deploy.py reads peak memory. Does nothing when they are installed.
set -euo pipefail

missing=()
{ command -v opusenc && command -v opusdec; } >/dev/null || missing+=(opus-tools)
{ command -v c2enc && command -v c2dec; } >/dev/null || missing+=(codec2)
command -v chromium >/dev/null || missing+=(chromium)
[ -x /usr/bin/time ] || missing+=(time)  # GNU time: bench/deploy.py's peak memory
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null; then
  echo "error: install ${missing[*]} with your package manager (e.g. brew install opus-tools codec2 chromium)" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing ${missing[*]} (apt-get)"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
