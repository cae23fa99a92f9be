"""Runnable experiments behind the command line: the demo, training commands and the ablation."""
