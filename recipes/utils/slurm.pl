#!/usr/bin/env perl
# Usage: slurm.pl [--max-jobs-run N] [--gpu N] [--mem SIZE] [--partition P] [JOB=1:N] LOGFILE COMMAND...
# The same interface as run.pl, but every job is submitted with `sbatch --wait` (its output
# going to the job's log), so a recipe runs on a Slurm cluster by choosing slurm.pl in cmd.sh.
# Extra sbatch options may be given in $SLURM_OPTS.
use strict;
use warnings;

my ($max_jobs, $gpu, $mem, $partition) = (1000, 0, "", "");
while (@ARGV && $ARGV[0] =~ /^--/) {
  my $opt = shift @ARGV;
  my $val = shift @ARGV;
  die "slurm.pl: option $opt needs a value\n" unless defined $val;
  if ($opt eq "--max-jobs-run") { $max_jobs = $val; }
  elsif ($opt eq "--gpu") { $gpu = $val; }
  elsif ($opt eq "--mem") { $mem = $val; }
  elsif ($opt eq "--partition") { $partition = $val; }
  else { die "slurm.pl: unknown option $opt\n"; }
}
my ($first, $last) = (1, 1);
my $var;
if (@ARGV && $ARGV[0] =~ /^([A-Za-z_]+)=(\d+):(\d+)$/) { ($var, $first, $last) = ($1, $2, $3); shift @ARGV; }
die "usage: slurm.pl [options] [JOB=1:N] LOGFILE COMMAND...\n" if @ARGV < 2;
my $logfile = shift @ARGV;
my $command = join(" ", @ARGV);

my %running;
my @failed;
sub reap {
  my $pid = wait();
  return if $pid < 0;
  push @failed, $running{$pid} if ($? >> 8) != 0;
  delete $running{$pid};
}
for my $job ($first .. $last) {
  reap() while keys(%running) >= $max_jobs;
  my ($log, $cmd) = ($logfile, $command);
  if (defined $var) { $log =~ s/\b$var\b/$job/g; $cmd =~ s/\b$var\b/$job/g; }
  my $dir = $log; $dir =~ s{/[^/]*$}{};
  system("mkdir", "-p", $dir) if $dir ne $log;
  my @sbatch = ("sbatch", "--wait", "--parsable", "--job-name=codec", "--output=$log");
  push @sbatch, "--gres=gpu:$gpu" if $gpu > 0;
  push @sbatch, "--mem=$mem" if $mem ne "";
  push @sbatch, "--partition=$partition" if $partition ne "";
  push @sbatch, split(" ", $ENV{SLURM_OPTS}) if $ENV{SLURM_OPTS};
  my $pid = fork();
  die "slurm.pl: cannot fork\n" unless defined $pid;
  if ($pid == 0) {
    my $status = system(@sbatch, "--wrap", "echo '# $cmd'; $cmd") >> 8;
    exit($status ? 1 : 0);
  }
  $running{$pid} = $log;
}
reap() while keys %running;
if (@failed) {
  print STDERR "slurm.pl: " . scalar(@failed) . " job(s) failed; see " . join(", ", sort @failed) . "\n";
  exit 1;
}
exit 0;
