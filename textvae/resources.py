"""Directories textvae ships beside its code: recipes, the embedded demo corpus, published values.

In a source checkout they are the repository's top-level folders (edit them in place); an installed
wheel carries copies in ``textvae/_bundled`` (see ``pyproject.toml``).
"""

from __future__ import annotations

from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]

_BUNDLED = {"recipes": "recipes", "data": "data", "published": "published"}


def shipped_dir(name: str) -> Path:
    """``recipes``, ``data`` or ``published``: the checkout's folder when there is one, else the wheel's."""
    in_checkout = REPOSITORY / _BUNDLED[name]
    if in_checkout.is_dir():
        return in_checkout
    return Path(__file__).resolve().parent / "_bundled" / name
