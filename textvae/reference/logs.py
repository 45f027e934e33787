"""One reader of the reference programs' standard output (training progress, validation and test
reports, active units, importance-weighted NLL, the language model's reports).

The programs print numbers with ``%.4f``; a diverged run prints ``nan``, ``inf`` or ``-inf``, which
are read as floats rather than making a line unreadable.
"""

from __future__ import annotations

import math
import re
import statistics

NUMBER = r"([-+]?(?:\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|nan|inf))"

TRAIN_LINE = re.compile(
    rf"epoch: (\d+), iter: (\d+), avg_loss: {NUMBER}, kl(?:/H\(z\|x\))?: {NUMBER}, "
    rf"(?:mi: {NUMBER}, )?recon: {NUMBER},"
)
EVAL_LINE = re.compile(
    rf"(VAL|TEST) --- avg_loss: {NUMBER}, kl(?:/H\(z\|x\))?: {NUMBER}, mi: {NUMBER}, "
    rf"recon: {NUMBER}, nll: {NUMBER}(?:, ppl: {NUMBER})?"
)
AU_LINE = re.compile(r"^(\d+) active units", re.M)
IW_LINE = re.compile(rf"iw nll: {NUMBER}(?:, iw ppl: {NUMBER})?")
SEED = re.compile(r"\bseed=(\d+)")
LM_TRAIN_LINE = re.compile(rf"epoch: (\d+), iter: (\d+), avg_loss: {NUMBER}, time")
LM_VALID_LINE = re.compile(rf"valid \| epoch: (\d+), nll: {NUMBER}")
LM_TEST_LINE = re.compile(rf"test \| nll: {NUMBER}")


def number(text: str | None) -> float:
    return math.nan if text is None else float(text)


def read_training_curve(text: str) -> list[dict]:
    """Per-epoch means of a program's progress reports: ``epoch`` (from 1), ``elbo`` (recon + KL:
    some programs' ``avg_loss`` is their weighted objective) and ``kl``. The iteration-0 report
    covers a single batch and is left out."""
    windows: dict[int, list[tuple[float, float]]] = {}
    for epoch, it, _, kl, _, recon in TRAIN_LINE.findall(text):
        if int(it) > 0:
            windows.setdefault(int(epoch), []).append((float(recon) + float(kl), float(kl)))
    return [
        {
            "epoch": e + 1,
            "elbo": statistics.fmean(x for x, _ in w),
            "kl": statistics.fmean(k for _, k in w),
        }
        for e, w in sorted(windows.items())
    ]


def read_final_test(text: str) -> dict:
    """The last TEST report (after the program reloads its best model), the active units printed
    after it and the last IW-NLL: ``iw_nll``, ``iw_ppl``, ``elbo`` (the one-sample −ELBO), ``kl``,
    ``mi``, ``rec``, ``ppl``, ``au``; {} when the log has not got that far."""
    tests = [m for m in EVAL_LINE.finditer(text) if m[1] == "TEST"]
    iws = list(IW_LINE.finditer(text))
    if not tests or not iws:
        return {}
    last = tests[-1]
    au = AU_LINE.search(text, last.end())
    if au is None:
        return {}
    return {
        "iw_nll": number(iws[-1][1]),
        "iw_ppl": number(iws[-1][2]),
        "elbo": number(last[6]),
        "kl": number(last[3]),
        "mi": number(last[4]),
        "rec": number(last[5]),
        "ppl": number(last[7]),
        "au": int(au[1]),
    }


def read_validation(text: str) -> list[dict]:
    return [
        {"elbo": number(m[6]), "kl": number(m[3]), "mi": number(m[4])}
        for m in EVAL_LINE.finditer(text)
        if m[1] == "VAL"
    ]


def read_seed(text: str) -> int | None:
    """The seed the program printed with its arguments (``Namespace(..., seed=N, ...)``)."""
    found = SEED.search(text)
    return int(found[1]) if found else None


def parse_log(text: str, language_model: bool = False) -> dict:
    """A finished run's figures: ``iw_nll``, ``kl``, ``mi``, ``au`` (and the other test figures),
    the per-epoch ``train`` curve and the ``valid`` reports; {} for an unfinished log."""
    if language_model:
        return parse_language_model_log(text)
    final = read_final_test(text)
    if not final:
        return {}
    return {**final, "train": read_training_curve(text), "valid": read_validation(text)}


def parse_language_model_log(text: str) -> dict:
    """The language-model program's exact test NLL (no latent: KL, MI and AU are 0) and, per epoch,
    its last progress report (a running mean over the epoch) and its validation NLL."""
    last: dict[int, float] = {}
    for epoch, _, loss in LM_TRAIN_LINE.findall(text):
        last[int(epoch)] = float(loss)
    tests = LM_TEST_LINE.findall(text)
    if not tests:
        return {}
    return {
        "iw_nll": float(tests[-1]),
        "kl": 0.0,
        "mi": 0.0,
        "au": 0,
        "train": [{"epoch": e + 1, "elbo": loss, "kl": 0.0} for e, loss in sorted(last.items())],
        "valid": [
            {"elbo": float(nll), "kl": 0.0, "mi": 0.0} for _, nll in LM_VALID_LINE.findall(text)
        ],
    }
