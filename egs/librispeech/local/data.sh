#!/usr/bin/env bash
# Usage: local/data.sh [--train-parts "train-clean-100 ..."] [--dev-part dev-clean]
#                      [--test-part test-clean] [--download-dir downloads]
# Downloads the LibriSpeech parts (MD5-checked, skipped when done) and writes data/{train,dev,test}.
set -euo pipefail
train_parts="train-clean-100"
dev_part=dev-clean
test_part=test-clean
download_dir=downloads
help_message="Usage: local/data.sh [options]"
. "$CODEC_ROOT/recipes/utils/parse_options.sh"

# the checksums published at https://www.openslr.org/resources/12/md5sum.txt
"$CODEC_ROOT/recipes/utils/libri_data.sh" LibriSpeech https://www.openslr.org/resources/12 .flac \
  "$train_parts" "$dev_part" "$test_part" "$download_dir" \
  dev-clean=42e2234ba48799c1f50f24a7926300a1 dev-other=c8d0bcc9cca99d4f8b62fcc847357931 \
  test-clean=32fa31d27d2e1cad72775fee3f4849a9 test-other=fb5a50374b501bb3bac4815ee91d3135 \
  train-clean-100=2a93770f6d5c6c964bc36631d331a522 train-clean-360=c0e676e450a7ff2f54aeade5171606fa \
  train-other-500=d1a0fd59409feb2c614ce4d30c387708
