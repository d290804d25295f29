#!/usr/bin/env bash
# Usage: ./run.sh [options]     (./run.sh --help lists them; see ../../recipes/codec.sh)
#
# LibriSpeech (openslr.org/12, CC BY 4.0): trains on train-clean-100, validates on dev-clean,
# tests on test-clean. Archives are downloaded (resumable, MD5-checked) into downloads/.
# Several GPUs: ./run.sh --ngpu 4; a Slurm cluster: edit cmd.sh.
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh

"$CODEC_ROOT/recipes/codec.sh" \
  --config conf/librispeech.yaml \
  --local-data-opts "--train-parts train-clean-100" \
  --bitrates "1.5 3 6" \
  "$@"
