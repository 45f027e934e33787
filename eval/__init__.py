"""Benchmarks, studies and the tools they share; run each script from the repository root as a module,
``python -m eval.NAME`` (eval/README.md maps each script to its sweep spec, results folder and doc).
"""
