#!/usr/bin/env bash
# Usage: ./run.sh [options]     (./run.sh --help lists them; see ../../recipes/codec.sh)
#
# VCTK 0.92 (CSTR, University of Edinburgh, CC BY 4.0; 110 speakers, 48 kHz, mic1): split by
# speaker, so dev and test voices are unseen in training.
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh

"$CODEC_ROOT/recipes/codec.sh" \
  --config conf/vctk.yaml \
  --bitrates "1.5 3 6" \
  "$@"
