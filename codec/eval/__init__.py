"""Evaluation: quality metrics (metrics.py: PESQ, STOI, SI-SDR, mel distance, pitch;
perceptual.py: DNSMOS, PLCMOS, ViSQOL, speaker similarity, WER), scoring many files with
confidence intervals (scoring.py), token usage (usage.py, token_report.py), and the benchmark
against Opus and Codec2 with its listening page (baselines.py, bench.py, listening.py)."""
