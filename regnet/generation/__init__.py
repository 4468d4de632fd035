"""Clips for human and objective evaluation: RegNet generation, importing other systems' output."""
