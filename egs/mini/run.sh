#!/usr/bin/env bash
# Usage: ./run.sh [options]     (./run.sh --help lists them; see ../../recipes/codec.sh)
#
# A first try on a laptop: a small real-speech corpus built from openly licensed Debian
# packages (US-English, Mexican-Spanish and Russian IVR prompts, Czech game dialogue; the
# Canadian-French speaker is held out as the test set), every stage on a CPU.
# Quick smoke run (one package, a few training steps):
#   ./run.sh --local-data-opts "--packages asterisk-core-sounds-en-g722 --max-files 40" \
#            --config tiny --train-opts "--set train.max_steps=20" --bitrates 0.4
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh

packages="asterisk-core-sounds-en-g722 asterisk-core-sounds-es-g722 asterisk-core-sounds-ru-g722"
packages+=" asterisk-core-sounds-fr-g722 fillets-ng-data-cs"
held_out="--test-packages asterisk-core-sounds-fr-g722 --max-test-files 80"

"$CODEC_ROOT/recipes/codec.sh" \
  --config conf/mini.yaml \
  --local-data-opts "--packages '$packages' $held_out" \
  --bitrates "1.5 3 6" \
  "$@"
