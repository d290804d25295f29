#!/usr/bin/env bash
# Usage: egs/<corpus>/run.sh [options]   (run.sh sets the corpus' options and calls this file)
#
# The shared staged recipe. Run from the corpus directory (egs/<corpus>); writes data/, dump/
# and exp/ there (a RESULTS.md beside run.sh is the corpus' own write-up and is left alone).
# Stages (pick with --stage/--stop-stage; finished stages leave a .done sentinel and are
# skipped when run again):
#   1 data preparation (local/data.sh)      -> data/<set>/{wav.scp,utt2spk,spk2utt}
#   2 format: resample, dump, validate      -> dump/<set>/{audio/,wav.scp,utt2dur}
#   3 train (codec train; resumable)        -> exp/codec_<tag>/model.ckpt
#     (--init-from default: fine-tune the shipped model instead of training from scratch)
#   4 compile codebooks (VP models)         -> exp/codec_<tag>/final.ckpt
#   5 encode and decode the test sets       -> exp/codec_<tag>/decode_<kbps>kbps/<set>/
#   6 score (PESQ, STOI, ESTOI, SI-SDR, mel, bitrate, token usage)
#   7 results naming the exp dir, config and git commit -> exp/codec_<tag>/RESULTS.md, all
#     runs collected in exp/RESULTS.md
set -euo pipefail

stage=1
stop_stage=7
nj=2                       # parallel jobs for formatting, coding and scoring
ngpu=0                     # GPUs for training (>1: torchrun, DDP)
config=speech16k           # preset name or YAML file (e.g. conf/mini.yaml)
tag=""                     # experiment name; default: the config's name
train_set=train
valid_set=dev
test_sets=test
bitrates="1.5 3 6"         # kbps for stage 5 (each picks the most stages that fit)
sample_rate=16000
local_data_opts=""         # passed to local/data.sh
train_opts=""              # passed to codec train, e.g. "--set train.max_steps=1000"
init_from=""               # fine-tune this model instead of training from scratch: a zoo name
                           # (default) or a checkpoint; the network comes from it, not --config
finetune_config=""         # with --init-from: training options (default: the finetune preset)
help_message="Usage: $0 [options]; stages: 1 data, 2 format, 3 train, 4 compile, 5 encode/decode, 6 score, 7 results
Fine-tune the shipped model on this corpus instead of training from scratch: $0 --init-from default"

utils=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/utils
. "$utils/parse_options.sh"
[ -f ./path.sh ] && . ./path.sh
[ -f ./cmd.sh ] && . ./cmd.sh
: "${train_cmd:=$utils/run.pl}" "${decode_cmd:=$utils/run.pl}"

if [ -n "$init_from" ]; then
  tag=${tag:-finetune_$(basename "${init_from%.*}")}
  config=${finetune_config:-finetune}  # what stage 7 reports
  train_config="${finetune_config:+--config $finetune_config} --init-from $init_from"
else
  tag=${tag:-$(basename "${config%.*}")}
  train_config="--config $config"
fi
exp=exp/codec_$tag
log() { echo "$(date '+%H:%M:%S') [stage $1] $2"; }
run_stage() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }

if run_stage 1 && [ ! -f data/.done ]; then
  log 1 "data preparation: local/data.sh $local_data_opts"
  eval local/data.sh "$local_data_opts"
  touch data/.done
fi

if run_stage 2; then
  for set in $train_set $valid_set $test_sets; do
    [ -f "dump/$set/.done" ] && continue
    log 2 "formatting data/$set -> dump/$set ($nj jobs, $sample_rate Hz mono FLAC)"
    $decode_cmd "JOB=1:$nj" "dump/$set/log/format.JOB.log" \
      python "$utils/format_data.py" part "data/$set" "dump/$set" JOB "$nj" --sample-rate "$sample_rate"
    python "$utils/format_data.py" merge "data/$set" "dump/$set" "$nj" --sample-rate "$sample_rate"
    touch "dump/$set/.done"
  done
fi

if run_stage 3 && [ ! -f "$exp/.train.done" ]; then
  mkdir -p "$exp"
  launcher="codec"
  [ "$ngpu" -gt 1 ] && launcher="torchrun --nproc_per_node $ngpu $(command -v codec)"
  # the exact command, kept in the exp dir: run it again to resume an interrupted training
  echo "$launcher train $train_config --train-data dump/$train_set --valid-data dump/$valid_set --out $exp --resume $train_opts" > "$exp/train.sh"
  log 3 "training: $(cat "$exp/train.sh") (log: exp/log/train_$tag.log)"
  $train_cmd --gpu "$ngpu" "exp/log/train_$tag.log" bash "$exp/train.sh"
  touch "$exp/.train.done"
fi

if run_stage 4 && [ ! -f "$exp/.compile.done" ]; then
  if grep -q "kind: vp" "$exp/config.yaml"; then
    log 4 "compiling VP codebooks on dump/$train_set"
    codec compile "$exp/model.ckpt" --data "dump/$train_set" -o "$exp/final.ckpt" --force
  else
    log 4 "no VP stage: the final model is the trained one"
    cp "$exp/model.ckpt" "$exp/final.ckpt"
  fi
  touch "$exp/.compile.done"
fi

if run_stage 5; then
  for set in $test_sets; do
    for kbps in $bitrates; do
      dir=$exp/decode_${kbps}kbps/$set
      [ -f "$dir/.done" ] && continue
      log 5 "coding dump/$set at $kbps kbps -> $dir"
      codec encode "dump/$set/wav.scp" -o "$dir/tokens" --model "$exp/final.ckpt" --bitrate "$kbps" --jobs "$nj" --force
      codec decode "$dir/tokens" -o "$dir/wav" --model "$exp/final.ckpt" --jobs "$nj" --force
      for f in "$dir"/wav/*.wav; do echo "$(basename "$f" .wav) $(cd "$(dirname "$f")" && pwd)/$(basename "$f")"; done | sort > "$dir/wav.scp"
      touch "$dir/.done"
    done
  done
fi

if run_stage 6; then
  for set in $test_sets; do
    for kbps in $bitrates; do
      dir=$exp/decode_${kbps}kbps/$set
      [ -f "$dir/scores/.done" ] && continue
      log 6 "scoring $dir"
      codec eval "dump/$set/wav.scp" "$dir/wav.scp" --out "$dir/scores" --jobs "$nj" > /dev/null
      codec eval --tokens "$dir/tokens" --model "$exp/final.ckpt" --out "$dir/scores" > /dev/null
      touch "$dir/scores/.done"
    done
  done
fi

if run_stage 7; then
  log 7 "writing $exp/RESULTS.md and exp/RESULTS.md"
  python "$utils/results.py" "$exp" --config "$config" --test-sets "$test_sets" > "$exp/RESULTS.md"
  python "$utils/results.py" exp/*/ --collect > exp/RESULTS.md
  cat "$exp/RESULTS.md"
fi
