"""Render a :class:`~textvae.report.tables.Table` as Markdown, CSV or LaTeX."""

from __future__ import annotations

import csv
import io
import math
from typing import Any

from ..errors import ConfigError
from .records import Stat
from .tables import Column, Table

FORMATS = ("markdown", "csv", "latex")


def _text(cell: Any, column: Column, pm: str = " ± ") -> str:
    if cell is None or (isinstance(cell, float) and math.isnan(cell)):
        return "–"
    if isinstance(cell, Stat):
        d = column.digits
        return f"{cell.mean:.{d}f}{pm}{cell.std:.{d}f}" if cell.n > 1 else f"{cell.mean:.{d}f}"
    if isinstance(cell, float):
        return f"{cell:g}"
    return str(cell)


def markdown(table: Table) -> str:
    esc = lambda s: s.replace("|", "\\|")  # noqa: E731
    lines = [f"**{table.title}**", "", "| " + " | ".join(esc(c.title) for c in table.columns) + " |",
             "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(esc(_text(cell, col)) for cell, col in zip(row, table.columns)) + " |"
              for row in table.rows]
    return "\n".join(lines + [""] + table.notes) + "\n"


def csv_text(table: Table) -> str:
    """One column per value: a mean ± std cell becomes ``TITLE`` (mean) and ``TITLE std``."""
    stat_columns = [any(isinstance(r[i], Stat) for r in table.rows) for i in range(len(table.columns))]
    header = []
    for col, is_stat in zip(table.columns, stat_columns):
        header += [col.title, f"{col.title} std"] if is_stat else [col.title]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in table.rows:
        cells = []
        for cell, is_stat in zip(row, stat_columns):
            if is_stat:
                cells += [repr(cell.mean), repr(cell.std)] if isinstance(cell, Stat) else ["", ""]
            elif cell is None or (isinstance(cell, float) and math.isnan(cell)):
                cells.append("")
            else:
                cells.append(repr(cell) if isinstance(cell, float) else str(cell))
        writer.writerow(cells)
    return out.getvalue()


LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                 "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                 "±": r"$\pm$", "–": "--"}


def _latex_escape(text: str) -> str:
    return "".join(LATEX_SPECIAL.get(ch, ch) for ch in text)


def latex(table: Table) -> str:
    lines = [r"\begin{table}[t]", r"\centering", r"\begin{tabular}{l" + "r" * (len(table.columns) - 1) + "}",
             r"\toprule", " & ".join(_latex_escape(c.title) for c in table.columns) + r" \\", r"\midrule"]
    for row in table.rows:
        cells = []
        for cell, col in zip(row, table.columns):
            text = _text(cell, col, pm=" \\pm ")
            cells.append(f"${text}$" if isinstance(cell, Stat) else _latex_escape(text))
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}",
              r"\caption{" + _latex_escape(table.title + ". " + " ".join(table.notes)) + "}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def render(table: Table, fmt: str) -> str:
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: choose from {', '.join(FORMATS)}")
    return {"markdown": markdown, "csv": csv_text, "latex": latex}[fmt](table)
