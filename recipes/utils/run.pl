#!/usr/bin/env perl
# Usage: run.pl [--max-jobs-run N] [--gpu N] [--mem SIZE] [--partition P] [--submit local|slurm]
#               [JOB=1:N] LOGFILE COMMAND...
# Runs COMMAND once, or once per JOB index in parallel (at most --max-jobs-run at a time); "JOB"
# in LOGFILE and COMMAND is replaced by the index. Each log starts with the command and ends
# with its exit status. Exits non-zero if any job failed, naming its log.
# --submit local (the default) runs on this machine, where --gpu/--mem/--partition are ignored;
# --submit slurm (what slurm.pl does) submits each job with `sbatch --wait`, passing --gpu as
# --gres=gpu:N, --mem and --partition, plus the options in $SLURM_OPTS.
use strict;
use warnings;

my %opt = ("--max-jobs-run" => 32, "--gpu" => 0, "--mem" => "", "--partition" => "", "--submit" => "local");
while (@ARGV && $ARGV[0] =~ /^--/) {
  my $name = shift @ARGV;
  my $value = shift @ARGV;
  die "run.pl: unknown option $name\n" unless exists $opt{$name};
  die "run.pl: option $name needs a value\n" unless defined $value;
  $opt{$name} = $value;
}
die "run.pl: --submit must be local or slurm\n" unless $opt{"--submit"} =~ /^(local|slurm)$/;
my ($first, $last, $var) = (1, 1, undef);
if (@ARGV && $ARGV[0] =~ /^([A-Za-z_]+)=(\d+):(\d+)$/) { ($var, $first, $last) = ($1, $2, $3); shift @ARGV; }
die "usage: run.pl [options] [JOB=1:N] LOGFILE COMMAND...\n" if @ARGV < 2;
my $logfile = shift @ARGV;
my $command = join(" ", @ARGV);

sub run_local {
  my ($cmd, $log) = @_;
  open(my $fh, ">", $log) or die "run.pl: cannot write $log\n";
  print $fh "# $cmd\n# started at " . localtime() . "\n";
  close $fh;
  my $status = system("bash", "-c", "( $cmd ) >>'$log' 2>&1") >> 8;
  open($fh, ">>", $log); print $fh "# ended (exit code $status) at " . localtime() . "\n"; close $fh;
  return $status;
}

sub run_slurm {
  my ($cmd, $log) = @_;
  my @sbatch = ("sbatch", "--wait", "--parsable", "--job-name=codec", "--output=$log");
  push @sbatch, "--gres=gpu:$opt{'--gpu'}" if $opt{"--gpu"} > 0;
  push @sbatch, "--mem=$opt{'--mem'}" if $opt{"--mem"} ne "";
  push @sbatch, "--partition=$opt{'--partition'}" if $opt{"--partition"} ne "";
  push @sbatch, split(" ", $ENV{SLURM_OPTS}) if $ENV{SLURM_OPTS};
  return system(@sbatch, "--wrap", "echo '# $cmd'; $cmd; status=\$?; echo \"# ended (exit code \$status)\"; exit \$status") >> 8;
}

my (%running, @failed);
sub reap {
  my $pid = wait();
  return if $pid < 0;
  push @failed, $running{$pid} if ($? >> 8) != 0;
  delete $running{$pid};
}
for my $job ($first .. $last) {
  reap() while keys(%running) >= $opt{"--max-jobs-run"};
  my ($log, $cmd) = ($logfile, $command);
  if (defined $var) { $log =~ s/\b$var\b/$job/g; $cmd =~ s/\b$var\b/$job/g; }
  (my $dir = $log) =~ s{/[^/]*$}{};
  system("mkdir", "-p", $dir) if $dir ne $log;
  my $pid = fork();
  die "run.pl: cannot fork\n" unless defined $pid;
  if ($pid == 0) {
    my $status = $opt{"--submit"} eq "slurm" ? run_slurm($cmd, $log) : run_local($cmd, $log);
    exit($status ? 1 : 0);
  }
  $running{$pid} = $log;
}
reap() while keys %running;
if (@failed) {
  print STDERR "run.pl: " . scalar(@failed) . " job(s) failed; see " . join(", ", sort @failed) . "\n";
  exit 1;
}
exit 0;
