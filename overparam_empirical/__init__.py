"""Empirical half of overparam: train the paper's benchmarks at growing width and measure traversal.

Imports ``overparam_theory`` (power-law fits, theory checks); never imports the CLI.
"""
