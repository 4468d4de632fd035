"""Simulated raters: bots that take HITs through the worker's HTTP path and answer from the
objective metrics with noise. Everything they submit carries ``simulated=1``."""
