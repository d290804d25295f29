#!/usr/bin/env bash
# Usage: local/data.sh [--packages "PKG ..."] [--test-packages "PKG ..."] [--max-files N]
#                      [--max-test-files N] [--skip "PATTERN ..."] [--download-dir DIR]
# Builds data/{train,dev,test} from Debian packages of real, openly licensed speech (see the
# table in the toolkit's data notes): `apt-get download` and `dpkg -x` need no root. The .deb
# files are kept in --download-dir and not fetched again. Asterisk prompts get a Kaldi `text`
# (for WER) from the matching asterisk-core-sounds-<lang> package.
set -euo pipefail
packages="asterisk-core-sounds-en-g722"
test_packages=""
max_files=0
max_test_files=0
skip=""  # leave out files whose path holds one of these, e.g. "/fr/" for a held-out language
download_dir=${XDG_CACHE_HOME:-$HOME/.cache}/codec/debian
help_message="Usage: local/data.sh [options]"
. "$CODEC_ROOT/recipes/utils/parse_options.sh"

if ! command -v apt-get >/dev/null || ! command -v dpkg >/dev/null; then
  echo "error: this recipe needs apt-get and dpkg (a Debian or Ubuntu machine). Elsewhere, fetch" >&2
  echo "  the .deb files of: $packages from packages.debian.org into $download_dir and run again." >&2
  exit 1
fi
mkdir -p "$download_dir" downloads
fetch() {  # fetch PKG: the package's files under downloads/PKG (downloaded once)
  local pkg=$1
  if ! ls "$download_dir/${pkg}"_*.deb >/dev/null 2>&1; then
    (cd "$download_dir" && apt-get download "$pkg" 2>/dev/null) || {
      [ "$(id -u)" -eq 0 ] && apt-get update -qq && (cd "$download_dir" && apt-get download "$pkg")
    } || { echo "error: apt-get download $pkg failed (try: sudo apt-get update)" >&2; exit 1; }
  fi
  if [ ! -d "downloads/$pkg" ]; then
    dpkg -x "$(ls "$download_dir/${pkg}"_*.deb | head -n 1)" "downloads/$pkg.tmp"
    mv "downloads/$pkg.tmp" "downloads/$pkg"
  fi
}
extracted=()
opts=""
for pkg in $packages; do
  fetch "$pkg"
  extracted+=("$pkg=downloads/$pkg")
  case $pkg in  # the Asterisk prompts' transcripts are in the package without a codec suffix
    asterisk-core-sounds-*-g722)
      lang=${pkg#asterisk-core-sounds-}; lang=${lang%-g722}
      fetch "asterisk-core-sounds-$lang"
      opts+=" --transcripts $pkg=downloads/asterisk-core-sounds-$lang/usr/share/doc/asterisk-core-sounds-$lang/core-sounds-$lang.txt.gz"
      ;;
  esac
done
for pkg in $test_packages; do opts+=" --test $pkg"; done
for pattern in $skip; do opts+=" --skip $pattern"; done
python "$CODEC_ROOT/recipes/utils/prepare.py" debian downloads/decoded data "${extracted[@]}" $opts \
  --max-files "$max_files" --max-test-files "$max_test_files"
