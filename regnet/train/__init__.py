"""Training RegNet: dataset over manifest + feature cache, losses, trainer, checkpoints, DDP."""
