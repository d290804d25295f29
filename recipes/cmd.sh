# How jobs run: run.pl on this machine, slurm.pl on a Slurm cluster (options: --gpu N, --mem,
# --partition; extra sbatch options in $SLURM_OPTS).
export train_cmd="$CODEC_ROOT/recipes/utils/run.pl"
export decode_cmd="$CODEC_ROOT/recipes/utils/run.pl --max-jobs-run 8"
# export train_cmd="$CODEC_ROOT/recipes/utils/slurm.pl --mem 16G"
# export decode_cmd="$CODEC_ROOT/recipes/utils/slurm.pl --mem 4G"
