"""CLI verbs of the regnet package, one module per area (see regnet.cli.COMMAND_MODULES)."""
