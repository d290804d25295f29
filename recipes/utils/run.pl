#!/usr/bin/env perl
# Usage: run.pl [--max-jobs-run N] [--gpu N] [--mem SIZE] [JOB=1:N] LOGFILE COMMAND...
# Runs COMMAND locally, once, or once per JOB index in parallel (at most --max-jobs-run at a
# time); "JOB" in LOGFILE and COMMAND is replaced by the index. Each log starts with the
# command and ends with its exit status. Exits non-zero if any job failed, naming its log.
# --gpu and --mem are accepted (and ignored) so that cmd.sh can swap in slurm.pl.
use strict;
use warnings;

my $max_jobs = 32;
while (@ARGV && $ARGV[0] =~ /^--/) {
  my $opt = shift @ARGV;
  my $val = shift @ARGV;
  die "run.pl: option $opt needs a value\n" unless defined $val;
  if ($opt eq "--max-jobs-run") { $max_jobs = $val; }
  elsif ($opt ne "--gpu" && $opt ne "--mem") { die "run.pl: unknown option $opt\n"; }
}
my ($first, $last) = (1, 1);
my $var;
if (@ARGV && $ARGV[0] =~ /^([A-Za-z_]+)=(\d+):(\d+)$/) { ($var, $first, $last) = ($1, $2, $3); shift @ARGV; }
die "usage: run.pl [options] [JOB=1:N] LOGFILE COMMAND...\n" if @ARGV < 2;
my $logfile = shift @ARGV;
my $command = join(" ", @ARGV);

my %running;
my @failed;
sub reap {
  my $pid = wait();
  return if $pid < 0;
  my $status = $? >> 8;
  push @failed, $running{$pid} if $status != 0;
  delete $running{$pid};
}
for my $job ($first .. $last) {
  reap() while keys(%running) >= $max_jobs;
  my ($log, $cmd) = ($logfile, $command);
  if (defined $var) { $log =~ s/\b$var\b/$job/g; $cmd =~ s/\b$var\b/$job/g; }
  my $dir = $log; $dir =~ s{/[^/]*$}{};
  system("mkdir", "-p", $dir) if $dir ne $log;
  my $pid = fork();
  die "run.pl: cannot fork\n" unless defined $pid;
  if ($pid == 0) {
    open(my $fh, ">", $log) or die "run.pl: cannot write $log\n";
    print $fh "# $cmd\n# started at " . localtime() . "\n";
    close $fh;
    my $status = system("bash", "-c", "( $cmd ) >>'$log' 2>&1");
    $status = $status >> 8;
    open($fh, ">>", $log); print $fh "# ended (exit code $status) at " . localtime() . "\n"; close $fh;
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
