"""The parity verdict: paired differences (textvae − reference, same seed, same batch order)
judged against margins fixed before any run.

- **equivalent**: the 90 % confidence interval of the mean paired difference lies inside
  (−margin, +margin) — two one-sided t-tests at 5 % each;
- **differs**: the 95 % interval excludes 0 and the mean lies outside the margin;
- **not shown** otherwise, with the number of seeds that would settle it if the observed mean and
  spread held (equivalence when the mean is inside the margin, a difference when outside).
"""

from __future__ import annotations

import math
import statistics

from scipy import stats

MARGINS = {"iw_nll": 1.0, "kl": 0.5, "mi": 0.5, "au": 3.0}
"""Fixed before any run was judged: nats for IW-NLL, KL and MI; active units for AU."""
MAX_SEEDS = 1000
"""Seeds-needed beyond this read as 'more than 1000' (a mean on the margin needs unboundedly
many)."""


def t_quantile(level: float, df: int) -> float:
    return float(stats.t.ppf(level, df))


def interval(diffs: list[float], confidence: float) -> tuple[float, float]:
    """The two-sided ``confidence`` t-interval of the mean of ``diffs`` (needs two or more)."""
    mean = statistics.fmean(diffs)
    half = (
        t_quantile(0.5 + confidence / 2, len(diffs) - 1)
        * statistics.stdev(diffs)
        / math.sqrt(len(diffs))
    )
    return mean - half, mean + half


def seeds_needed(mean: float, sd: float, margin: float) -> int | None:
    """Seeds at which the observed mean and spread would give a verdict; None when not within
    MAX_SEEDS."""
    for n in range(2, MAX_SEEDS + 1):
        if abs(mean) < margin and abs(mean) + t_quantile(0.95, n - 1) * sd / math.sqrt(n) < margin:
            return n
        if abs(mean) > margin and t_quantile(0.975, n - 1) * sd / math.sqrt(n) < abs(mean):
            return n
    return None


def judged(n: int | list[int], mean: float | None, sd: float | None, margin: float,
           ci90: tuple[float, float] | None, ci95: tuple[float, float] | None) -> dict:
    """The record of one metric's verdict: equivalent when the 90 % interval lies inside the margin,
    differs when the 95 % interval excludes 0 and the mean lies outside it, else not shown (with the
    seeds it would need at the observed spread; none without an interval)."""
    if ci90 is None or ci95 is None:
        verdict = "not shown"
    elif -margin < ci90[0] and ci90[1] < margin:
        verdict = "equivalent"
    elif (ci95[0] > 0 or ci95[1] < 0) and abs(mean) > margin:
        verdict = "differs"
    else:
        verdict = "not shown"
    out = {"verdict": verdict, "n": n, "mean": mean, "sd": sd, "margin": margin,
           "diff_ci90": list(ci90) if ci90 else None, "diff_ci95": list(ci95) if ci95 else None}
    if verdict == "not shown":
        out["seeds_needed"] = seeds_needed(mean, sd, margin) if ci90 else None
    return out


def paired_verdict(diffs: list[float], margin: float) -> dict:
    """``verdict``, ``n``, ``mean``, ``sd``, ``margin``, ``diff_ci90``, ``diff_ci95`` and, when not
    shown, ``seeds_needed`` (None: more than MAX_SEEDS) for the paired differences ``diffs``."""
    if len(diffs) < 2:
        return judged(len(diffs), diffs[0] if diffs else None, None, margin, None, None)
    return judged(len(diffs), statistics.fmean(diffs), statistics.stdev(diffs), margin,
                  interval(diffs, 0.90), interval(diffs, 0.95))


def unpaired_verdict(ours: list[float], reference: list[float], margin: float) -> dict:
    """The same rule on two independent sets of seeds (each side's own batch order): the
    difference of the means with Welch's interval; ``seeds_needed`` is per side, at the observed
    spreads."""
    n = [len(ours), len(reference)]
    if min(n) < 2:
        return judged(n, None, None, margin, None, None)
    mean = statistics.fmean(ours) - statistics.fmean(reference)
    va, vb = statistics.variance(ours) / len(ours), statistics.variance(reference) / len(reference)
    se = math.sqrt(va + vb)
    if se:  # Welch-Satterthwaite degrees of freedom
        df = (va + vb) ** 2 / ((va**2 / (len(ours) - 1) if va else 0) + (vb**2 / (len(reference) - 1) if vb else 0))
    else:
        df = 1e9
    ci90 = (mean - t_quantile(0.95, df) * se, mean + t_quantile(0.95, df) * se)
    ci95 = (mean - t_quantile(0.975, df) * se, mean + t_quantile(0.975, df) * se)
    pooled_sd = math.sqrt(statistics.variance(ours) + statistics.variance(reference))
    return judged(n, mean, pooled_sd, margin, ci90, ci95)


def row_verdict(metrics: dict[str, dict]) -> str:
    """A row differs when any metric differs, is equivalent when every metric is, else not shown."""
    verdicts = [m["verdict"] for m in metrics.values()]
    if "differs" in verdicts:
        return "differs"
    return "equivalent" if verdicts and all(v == "equivalent" for v in verdicts) else "not shown"
