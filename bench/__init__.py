"""Benchmarks of explorer against the libraries people would otherwise use.

``python -m bench`` runs them (see bench/README.md); every ratio is measured
in one run, on the same model, inputs and device, with the two sides interleaved.
"""
