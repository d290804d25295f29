#!/usr/bin/env bash
# Usage: ./run.sh [options]     (./run.sh --help lists them; see ../../recipes/codec.sh)
#
# LibriTTS (openslr.org/60, CC BY 4.0; 24 kHz audio, resampled to 16 kHz in stage 2): trains on
# train-clean-100, validates on dev-clean, tests on test-clean.
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh

"$CODEC_ROOT/recipes/codec.sh" \
  --config conf/libritts.yaml \
  --local-data-opts "--train-parts train-clean-100" \
  --bitrates "1.5 3 6" \
  "$@"
