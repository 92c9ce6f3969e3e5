"""Means over seeds and their 95% intervals (tfcomp.eval.stats), against closed forms, scipy's
own Welch test and a simulation of the intervals' coverage."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from tfcomp.eval import stats


def test_t_quantiles_have_their_closed_forms():
    # df = 1 is the Cauchy distribution; df = 2 has t = (2p - 1) / sqrt(2 p (1 - p)).
    assert stats.t_quantile(1) == pytest.approx(math.tan(math.pi * 0.475), rel=1e-9)
    assert stats.t_quantile(2) == pytest.approx(0.95 / math.sqrt(2 * 0.975 * 0.025), rel=1e-9)


def test_mean_and_interval_of_three_seeds():
    e = stats.estimate([1.0, 2.0, 3.0])
    assert (e.mean, e.n, e.sd) == (2.0, 3, 1.0)
    assert e.half_width == pytest.approx(stats.t_quantile(2) / math.sqrt(3))
    assert (e.low, e.high) == pytest.approx((2 - e.half_width, 2 + e.half_width))
    one = stats.estimate([0.7, None])
    assert one.mean == 0.7 and one.half_width is None and one.n == 1
    assert stats.estimate([]) is None
    assert stats.format_estimate(e) == f"2.00 ± {e.half_width:.2f} (3 seeds)"
    assert stats.format_estimate(one) == "0.70" and stats.format_estimate(None) == ""


def test_difference_is_welchs_interval():
    a, b = [55.1, 54.2, 56.0], [53.0, 54.9, 52.2, 53.7]
    d = stats.difference(stats.estimate(a), stats.estimate(b))
    welch = scipy_stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert d.mean == pytest.approx(np.mean(a) - np.mean(b))
    assert (d.low, d.high) == pytest.approx((welch.low, welch.high), rel=1e-9)


def test_one_seed_rows_borrow_a_pooled_spread_or_have_no_interval():
    rows = [stats.estimate([1.0, 3.0]), stats.estimate([2.0, 4.0, 6.0]), stats.estimate([5])]
    sd, df = stats.pooled_sd(rows)
    # sqrt((1 * 2 + 2 * 4) / 3): s^2 = 2 and 4 with 1 and 2 degrees of freedom.
    assert df == 3 and sd == pytest.approx(math.sqrt(10 / 3))
    single_a, single_b = stats.estimate([10.0]), stats.estimate([7.0])
    assert stats.difference(single_a, single_b).half_width is None
    d = stats.difference(single_a, single_b, sd=sd, sd_df=df)
    # Two rows of one seed share the one estimate sd^2: (10 - 7) / (sqrt(2) sd) is t with df.
    assert d.mean == 3.0
    assert d.half_width == pytest.approx(stats.t_quantile(df) * math.sqrt(2) * sd)
    assert stats.pooled_sd([single_a]) == (None, 0)
    # The one-seed row's own interval: one run around its mean, t(0.975, 3) * sd (3.1824 * sd).
    own = stats.with_borrowed_spread(single_a, sd, df)
    assert own.borrowed and own.half_width == pytest.approx(3.182446 * sd, rel=1e-6)
    assert stats.format_estimate(own) == f"10.00 ± {own.half_width:.2f} (1 seed, pooled spread)"
    assert stats.with_borrowed_spread(rows[0], sd, df) is rows[0]  # several seeds: its own
    assert stats.with_borrowed_spread(single_a, None, 0) is single_a  # nothing to pool


def test_intervals_cover_the_true_mean_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    trials, hits, diff_hits = 4000, 0, 0
    for _ in range(trials):
        a, b = rng.normal(50, 2, size=3), rng.normal(48, 1, size=3)
        e = stats.estimate(a)
        hits += e.low <= 50 <= e.high
        d = stats.difference(e, stats.estimate(b))
        diff_hits += d.low <= 2 <= d.high
    # Binomial standard error of a 95% rate over 4000 trials: 0.34 points.
    assert 0.94 <= hits / trials <= 0.96
    assert 0.935 <= diff_hits / trials <= 0.975  # Welch's interval is close to, not exactly, 95%


@pytest.mark.parametrize("pooled_rows", [1, 3])
def test_a_difference_of_one_seed_rows_covers_95_percent_with_a_borrowed_spread(pooled_rows):
    """Two one-seed rows and a spread pooled from `pooled_rows` rows of two seeds (1 or 3
    degrees of freedom): their difference's interval covers the true difference 95% of the
    time. Counting the shared estimate twice (Welch-Satterthwaite: 2 df) covers 85.5% at 1 df
    (2 atan(t(0.975, 2)) / pi) and 90.8% at 3."""
    rng = np.random.default_rng(1)
    trials, hits = 4000, 0
    for _ in range(trials):
        rows = [stats.estimate(rng.normal(0, 2, size=2)) for _ in range(pooled_rows)]
        sd, df = stats.pooled_sd(rows)
        a, b = stats.estimate([rng.normal(50, 2)]), stats.estimate([rng.normal(48, 2)])
        d = stats.difference(a, b, sd=sd, sd_df=df)
        hits += d.low <= 2 <= d.high
    # Binomial standard error of a 95% rate over 4000 trials: 0.34 points.
    assert 0.94 <= hits / trials <= 0.96


def test_a_difference_over_shared_codecs_weighs_each_codecs_difference():
    """stats.blocked_difference: with the codec a block, the row effect is the inverse-variance
    weighted mean of the within-codec differences, weights 1 / (1/n_a + 1/n_b) per codec; its
    residual sums the within-codec squares and the codecs' disagreement (closed form of the
    two-way additive model with two rows), n - codecs - 1 degrees of freedom."""
    a = [(70.5, "A"), (71.1, "B"), (71.06, "B"), (70.0, "C")]
    b = [(74.27, "A"), (73.76, "B"), (73.1, "B"), (72.9, "B")]
    groups = {}
    for row, draws in ((0, a), (1, b)):
        for value, codec in draws:
            groups.setdefault(codec, ([], []))[row].append(value)
    shared = {k: g for k, g in groups.items() if g[0] and g[1]}
    weight = {k: 1 / (1 / len(g[0]) + 1 / len(g[1])) for k, g in shared.items()}
    within = {k: np.mean(g[0]) - np.mean(g[1]) for k, g in shared.items()}
    total = sum(weight.values())
    effect = sum(weight[k] * within[k] for k in shared) / total
    squares = sum(((np.array(v) - np.mean(v)) ** 2).sum() for g in groups.values() for v in g if v)
    squares += sum(weight[k] * (within[k] - effect) ** 2 for k in shared)
    df = len(a) + len(b) - len(groups) - 1
    half = scipy_stats.t.ppf(0.975, df) * math.sqrt(squares / df / total)
    e = stats.blocked_difference(a, b)
    assert e.mean == pytest.approx(effect) and e.half_width == pytest.approx(half)
    # Data that are exactly row + codec: the effect, with no spread at all.
    exact = stats.blocked_difference([(1.0, "A"), (3.0, "B")], [(0.5, "A"), (2.5, "B"), (2.5, "B")])
    assert exact.mean == pytest.approx(0.5) and exact.half_width == pytest.approx(0.0, abs=1e-9)
    # No degrees of freedom left: no interval, unless a spread measured elsewhere stands in
    # for the residual's (codec A's one pair: the weight 1 / (1/1 + 1/1), variance 2 sd^2;
    # codec B holds row a only and fixes its own effect); no codec shared: no estimate.
    assert stats.blocked_difference([(1.0, "A"), (2.0, "B")], [(0.0, "A")]).half_width is None
    borrowed = stats.blocked_difference([(1.0, "A"), (2.0, "B")], [(0.0, "A")], sd=0.8, sd_df=5)
    assert borrowed.mean == pytest.approx(1.0)
    assert borrowed.half_width == pytest.approx(scipy_stats.t.ppf(0.975, 5) * 0.8 * math.sqrt(2))
    assert stats.blocked_difference([(1.0, "A")], [(0.0, "B")]) is None
