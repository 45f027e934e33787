"""``load_eval_script(NAME)``: eval/NAME.py imported as ``eval.NAME`` (eval/ is a package); the tests of
scripts not yet switched to ``from eval import NAME`` still call it."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

EVAL = Path(__file__).resolve().parents[1] / "eval"


def load_eval_script(name: str) -> ModuleType:
    return importlib.import_module(f"eval.{name}")
