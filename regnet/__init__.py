"""regnet-bench: RegNet (Chen et al., IEEE TIP 2020) and a human/objective benchmark harness."""

__version__ = "0.1.0"
