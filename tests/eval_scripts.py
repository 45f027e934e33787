"""Import a script under eval/ (not a package) as a module, for the tests of its helpers."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

EVAL = Path(__file__).resolve().parents[1] / "eval"


def load_eval_script(name: str) -> ModuleType:
    """eval/NAME.py as module NAME; registered in sys.modules first, which its dataclasses need."""
    spec = importlib.util.spec_from_file_location(name, EVAL / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
