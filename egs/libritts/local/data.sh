#!/usr/bin/env bash
# Usage: local/data.sh [--train-parts "train-clean-100 ..."] [--dev-part dev-clean]
#                      [--test-part test-clean] [--download-dir downloads]
# Downloads the LibriTTS parts (checked against the md5sum.txt published beside them, skipped
# when done) and writes data/{train,dev,test}.
set -euo pipefail
train_parts="train-clean-100"
dev_part=dev-clean
test_part=test-clean
download_dir=downloads
help_message="Usage: local/data.sh [options]"
. "$CODEC_ROOT/recipes/utils/parse_options.sh"

"$CODEC_ROOT/recipes/utils/libri_data.sh" LibriTTS https://www.openslr.org/resources/60 .wav \
  "$train_parts" "$dev_part" "$test_part" "$download_dir"
