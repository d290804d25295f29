#!/usr/bin/env perl
# Usage: slurm.pl [--max-jobs-run N] [--gpu N] [--mem SIZE] [--partition P] [JOB=1:N] LOGFILE COMMAND...
# run.pl's interface on a Slurm cluster: every job is submitted with `sbatch --wait`, its output
# going to the job's log (choose it in cmd.sh). Extra sbatch options may be given in $SLURM_OPTS.
use strict;
use warnings;
use FindBin;
exec("$FindBin::Bin/run.pl", "--submit", "slurm", @ARGV) or die "slurm.pl: cannot run run.pl: $!\n";
