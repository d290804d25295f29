"""Training: experiment configuration, data crops, losses, the trainer and its checkpoints."""
