"""Means over seeds with 95% intervals, and the interval of a difference between two rows.

A row of Table 2 trained with n seeds is reported as its mean and the half-width of the 95%
Student-t interval of that mean, t(0.975, n - 1) * s / sqrt(n), s the sample standard deviation
over seeds. A difference between two rows (e.g. cResNet-51 minus ResNet-50) uses Welch's
interval: the two rows' variances of the mean added, with Welch-Satterthwaite degrees of freedom.

A row with one seed has no spread of its own. `difference` can be given a standard deviation
over seeds measured elsewhere (`pooled_sd` of the rows that have several seeds), which stands in
for it; otherwise the difference has no interval. `with_borrowed_spread` gives such a row the
interval of one run around its mean from that standard deviation, t(0.975, df) * s_pooled,
marked as borrowed.

Rows whose seeds were trained on several draws of a codec (a codec trained again on a new
machine) that both rows share are compared with the codec as a block (`blocked_difference`).
"""

import dataclasses
import math

import numpy as np
from scipy import stats as _stats

LEVEL = 0.95


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A mean over n seeds and its 95% interval's half-width (None without one)."""

    mean: float
    half_width: float | None
    n: int
    sd: float | None = None  # the sample standard deviation over seeds (n >= 2)
    borrowed: bool = False  # one seed; the interval's spread is pooled from other rows

    @property
    def low(self):
        return None if self.half_width is None else self.mean - self.half_width

    @property
    def high(self):
        return None if self.half_width is None else self.mean + self.half_width


def t_quantile(df):
    """The two-sided 95% Student-t quantile with `df` degrees of freedom."""
    return float(_stats.t.ppf(0.5 + LEVEL / 2, df))


def estimate(values):
    """Estimate of the mean of `values` (one per seed); None for no values."""
    values = [float(v) for v in values if v is not None]
    n = len(values)
    if n == 0:
        return None
    mean = sum(values) / n
    if n == 1:
        return Estimate(mean, None, 1)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return Estimate(mean, t_quantile(n - 1) * sd / math.sqrt(n), n, sd)


def pooled_sd(estimates):
    """The standard deviation over seeds pooled over rows with >= 2 seeds (None if none):
    sqrt(sum (n_i - 1) s_i^2 / sum (n_i - 1)), with its degrees of freedom."""
    rows = [e for e in estimates if e is not None and e.n >= 2]
    if not rows:
        return None, 0
    df = sum(e.n - 1 for e in rows)
    return math.sqrt(sum((e.n - 1) * e.sd**2 for e in rows) / df), df


def with_borrowed_spread(e, sd, df):
    """A one-seed Estimate with the 95% interval of one run around its mean, its spread `sd`
    over seeds pooled from other rows with `df` degrees of freedom (`pooled_sd`): half-width
    t(0.975, df) * sd. Rows with several seeds (or no `sd`) are returned as they are."""
    if e is None or e.n != 1 or sd is None or not df:
        return e
    return dataclasses.replace(e, half_width=t_quantile(df) * sd, borrowed=True)


def difference(a, b, sd=None, sd_df=None):
    """Estimate of mean(a) - mean(b) with Welch's 95% interval.

    A row with one seed takes `sd` (a standard deviation over seeds measured on other rows,
    with `sd_df` degrees of freedom) as its spread; without it the difference has no interval.
    Two such rows share that one estimate, so their variances are one term of `sd_df` degrees
    of freedom, not two independent ones: (x_a - x_b) / (sqrt(2) sd) is Student-t with `sd_df`
    degrees of freedom (Welch-Satterthwaite over two terms would give 2 `sd_df`, an interval
    too narrow).
    """
    if a is None or b is None:
        return None
    parts = []  # (variance of the mean, degrees of freedom) per independent estimate
    borrowed = 0.0  # the one-seed rows' variances, all from `sd`
    for e in (a, b):
        if e.n >= 2:
            parts.append((e.sd**2 / e.n, e.n - 1))
        elif sd is not None and sd_df:
            borrowed += sd**2 / e.n
        else:
            return Estimate(a.mean - b.mean, None, min(a.n, b.n))
    if borrowed:
        parts.append((borrowed, sd_df))
    variance = sum(v for v, _ in parts)
    if variance == 0:
        return Estimate(a.mean - b.mean, 0.0, min(a.n, b.n), 0.0)
    df = variance**2 / sum(v**2 / d for v, d in parts)
    return Estimate(a.mean - b.mean, t_quantile(df) * math.sqrt(variance), min(a.n, b.n))


def blocked_difference(a, b, sd=None, sd_df=None):
    """Estimate of row a - row b when their seeds lie on several draws of a codec (`a`, `b`:
    lists of (value, codec id), one per seed), the codec a block: the additive model value =
    row + codec + noise fitted by least squares, so that a codec both rows were trained on
    cancels from the difference, and the 95% interval of the row effect from the residual
    variance (n - rows - codecs + 1 degrees of freedom). Where the fit leaves no degrees of
    freedom (each shared codec holds one seed of each row), `sd` (a standard deviation over
    seeds measured on other rows, with `sd_df` degrees of freedom, as in `difference`) stands
    in for the residual's; without it there is no interval. None where the rows share no codec
    (the difference is then not estimable apart from the codecs')."""
    if not {c for _, c in a} & {c for _, c in b}:
        return None
    codecs = sorted({c for _, c in a + b})
    rows = [(1.0, v, c) for v, c in a] + [(0.0, v, c) for v, c in b]
    x = np.array([[r] + [float(c == k) for k in codecs] for r, _, c in rows])
    y = np.array([v for _, v, _ in rows], np.float64)
    coef, _, rank, _ = np.linalg.lstsq(x, y, rcond=None)
    df = len(y) - rank
    n = min(len(a), len(b))
    scale = float(np.linalg.pinv(x.T @ x)[0, 0])  # the row effect's variance / noise variance
    if df <= 0:
        if sd is None or not sd_df:
            return Estimate(float(coef[0]), None, n)
        return Estimate(float(coef[0]), t_quantile(sd_df) * sd * math.sqrt(scale), n)
    residual = y - x @ coef
    variance = float(residual @ residual) / df * scale
    return Estimate(float(coef[0]), t_quantile(df) * math.sqrt(variance), n)


def format_estimate(e, digits=2):
    """'55.20 ± 1.30 (3 seeds)', '55.20' for one seed, '55.20 ± 2.10 (1 seed, pooled spread)'
    for one seed with a borrowed spread, '' for none."""
    if e is None:
        return ""
    if e.half_width is None:
        return f"{e.mean:.{digits}f}"
    if e.borrowed:
        return f"{e.mean:.{digits}f} ± {e.half_width:.{digits}f} (1 seed, pooled spread)"
    return f"{e.mean:.{digits}f} ± {e.half_width:.{digits}f} ({e.n} seeds)"
