#!/usr/bin/env bash
# Usage: local/data.sh [--download-dir downloads] [--test-speakers 4] [--dev-speakers 4]
# Downloads VCTK 0.92 (about 11 GB; resumable, MD5-checked, skipped when present) and writes
# data/{train,dev,test} split by speaker.
set -euo pipefail
download_dir=downloads
url=https://datashare.ed.ac.uk/bitstream/handle/10283/3443/VCTK-Corpus-0.92.zip
help_message="Usage: local/data.sh [options]"
. "$CODEC_ROOT/recipes/utils/parse_options.sh"

if [ ! -f "$download_dir/VCTK/.done" ]; then
  "$CODEC_ROOT/recipes/utils/download.sh" "$url" "$download_dir" 8a6ba2946b36fcbef0212cad601f4bfa
  mkdir -p "$download_dir/VCTK"
  unzip -q -o "$download_dir/VCTK-Corpus-0.92.zip" -d "$download_dir/VCTK"
  touch "$download_dir/VCTK/.done"
fi
python "$CODEC_ROOT/recipes/utils/prepare.py" vctk "$download_dir/VCTK" data
