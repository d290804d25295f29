#!/usr/bin/env bash
# Usage: download.sh URL DEST_DIR [MD5]
# Resumable download (curl -C - or wget -c) of URL into DEST_DIR, verified by MD5 when given,
# else by the md5sum.txt published beside the file when there is one. A verified file is not
# downloaded again.
set -euo pipefail
url=$1; dest=$2; md5=${3:-}
name=$(basename "$url")
mkdir -p "$dest"
file=$dest/$name
if [ -f "$file.verified" ]; then echo "$name: present and verified"; exit 0; fi
if command -v curl >/dev/null; then
  curl -fL -C - --retry 5 -o "$file" "$url"
else
  wget -c --tries=5 -O "$file" "$url"
fi
if [ -z "$md5" ]; then
  sums=$(curl -fsL "$(dirname "$url")/md5sum.txt" 2>/dev/null || true)
  md5=$(awk -v n="$name" '$2 == n {print $1}' <<<"$sums")
fi
if [ -n "$md5" ]; then
  actual=$(md5sum "$file" | cut -d' ' -f1)
  if [ "$actual" != "$md5" ]; then
    echo "error: $name has MD5 $actual, expected $md5: delete it and download again" >&2
    exit 1
  fi
  echo "$name: MD5 verified"
else
  echo "warning: no checksum known for $name; not verified" >&2
fi
touch "$file.verified"
