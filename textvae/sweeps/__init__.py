"""Sweeps: a grid of recipes x seeds x overrides, each point an ordinary run folder, run on Ray.

:mod:`.spec` reads a sweep (TOML or the CLI shorthand) into points; :mod:`.point` runs one point
(skip if finished, resume if interrupted, record a failure as one line); :mod:`.engine` schedules
the points as Ray tasks and keeps the manifest; :mod:`.progress` prints the one-line status.
"""

from .spec import Point, SweepSpec, load_spec, shorthand_spec

__all__ = ["Point", "SweepSpec", "load_spec", "shorthand_spec"]
