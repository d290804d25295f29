#!/usr/bin/env bash
# Usage: ./run_compare.sh [--steps 1200 | --minutes 30] [--variants "vq fsq fsp fsp_q0 vp vp_nomh"]
#                        [--second-seed "vq fsq fsp vp"] [--bitrates "1 2"] [--nj 2] [--jobs 1]
#                        [--compare-config conf/compare.yaml] [--init-from MODEL]
#                        [--run-opts "more ./run.sh options"]
#
# Checks the VP-VAE paper's claims on egs/mini's data: the same encoder/decoder, bitrate and
# number of training steps for VQ, FSQ, FSP (quantize_rate 0.5 and 0.0) and VP (with and
# without the Metropolis-Hastings acceptance; eta from estimate_eta, the preset's 1.2). The
# variants named in --second-seed train twice (seeds 0 and 1, the second seeds last);
# --variants picks a subset. Data come from ./run.sh's stages 1-2; each variant runs stages 3-6
# as exp/codec_compare_<variant>_s<seed>; the report (tables, and one figure per family) of every
# exp/codec_compare_* goes to exp/compare/RESULTS.md and exp/compare/<family>.png (RESULTS.md
# here holds the committed analysis of one such run and is left alone).
#
# --init-from MODEL (a zoo name or a checkpoint with the config's encoder and decoder) starts
# every run from that model's encoder and decoder around a fresh quantizer of its family
# (train.init_modules): the comparison where the networks already make speech, at a fraction of
# the cost of training each from scratch.
# Every run gets the same budget: --steps training steps, or with --minutes a wall-clock budget
# (train.max_minutes) instead. --jobs N runs N variants at once, each on (cores / N) threads
# (on 2 cores --jobs 2 runs two at a time on one thread each); each run's output goes to
# exp/compare/<run>.log. On the frame-rate backbone from speech16k-frame-v6's encoder and
# decoder, scored at 1 and 4 stages (egs/mini/RESULTS.md; 10 runs, about 2 hours on 2 cores):
#   ./run_compare.sh --compare-config conf/compare_frame.yaml --init-from speech16k-frame-v6 \
#     --minutes 20 --jobs 2 --bitrates "0.5 2"
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh

steps=1200
minutes=0
jobs=1
variants="vq fsq fsp fsp_q0 vp vp_nomh"
second_seed="vq fsq fsp vp"
bitrates="1 2"
nj=2
compare_config=conf/compare.yaml
init_from=""
run_opts=""
help_message="Usage: ./run_compare.sh [options]"
. "$CODEC_ROOT/recipes/utils/parse_options.sh"

declare -A variant_opts=(
  [vq]="--set model.quantizer.kind=vq"
  [fsq]="--set model.quantizer.kind=fsq"
  [fsp]="--set model.quantizer.kind=fsp --set model.quantizer.quantize_rate=0.5"
  [fsp_q0]="--set model.quantizer.kind=fsp --set model.quantizer.quantize_rate=0.0"
  [vp]="--set model.quantizer.kind=vp --set model.quantizer.vp.mh_accept=true"
  [vp_nomh]="--set model.quantizer.kind=vp --set model.quantizer.vp.mh_accept=false"
)
if [ "$minutes" != 0 ]; then
  budget="--set train.max_minutes=$minutes --set train.max_steps=100000000"
else
  budget="--set train.max_steps=$steps"
fi
if [ -n "$init_from" ]; then
  budget+=" --init-from $init_from --set \"train.init_modules=[encoder,decoder]\""
fi
threads=$(( $(nproc) / jobs > 0 ? $(nproc) / jobs : 1 ))
export OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads
eval ./run.sh --stop-stage 2 --nj "$nj" "$run_opts"
# every variant once (seed 0), then the second seeds: a cut-short run still covers each family
runs=""
for name in $variants; do runs+=" $name:0"; done
for name in $variants; do
  [[ " $second_seed " == *" $name "* ]] && runs+=" $name:1"
done
for run in $runs; do
  name=${run%:*}
  [[ -v "variant_opts[$name]" ]] || { echo "$0: unknown variant '$name'" >&2; exit 1; }
done
mkdir -p exp/compare
failed() { echo "$0: a run failed: its exp/compare/<run>.log says why" >&2; exit 1; }
for run in $runs; do
  name=${run%:*} seed=${run#*:}
  tag="compare_${name}_s$seed"
  echo "$(date '+%H:%M:%S') $tag (output: exp/compare/$tag.log)"
  eval ./run.sh "$run_opts" --stage 3 --stop-stage 6 --nj "$nj" --config "$compare_config" \
    --bitrates "'$bitrates'" --tag "$tag" \
    --train-opts "'${variant_opts[$name]} --set train.seed=$seed $budget'" \
    > "exp/compare/$tag.log" 2>&1 &
  # at most --jobs runs at once; a failed run stops the comparison
  while [ "$(jobs -pr | wc -l)" -ge "$jobs" ]; do wait -n || failed; done
done
while [ "$(jobs -pr | wc -l)" -gt 0 ]; do wait -n || failed; done
python "$CODEC_ROOT/recipes/utils/compare_report.py" exp/codec_compare_* --plots exp/compare \
  > exp/compare/RESULTS.md
cat exp/compare/RESULTS.md
