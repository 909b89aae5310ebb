"""Means over seeds, 95% t-intervals, relative cost and the paired test, on runs with known values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from reporting_helpers import NDCG, build_runs
from scipy import stats

from privrec.reporting import ci95_halfwidth, mean_ci95, summarize, table

T_975_2 = 4.302652729911275  # Student t, 0.975 quantile, 2 degrees of freedom (printed tables: 4.303)


def test_ci_half_width_hand_value():
    # values 0.30, 0.32, 0.34: mean 0.32, sd 0.02, n 3
    assert ci95_halfwidth(0.02, 3) == pytest.approx(T_975_2 * 0.02 / math.sqrt(3), rel=1e-9)
    assert ci95_halfwidth(0.02, 3) == pytest.approx(0.049683, abs=1e-6)
    mean, half, n = mean_ci95([0.30, 0.32, 0.34, np.nan])
    assert (mean, n) == (pytest.approx(0.32), 3) and half == pytest.approx(0.049683, abs=1e-6)


def test_no_interval_for_a_single_seed():
    assert np.isnan(ci95_halfwidth(0.1, 1))
    mean, half, n = mean_ci95([0.5])
    assert mean == 0.5 and np.isnan(half) and n == 1
    assert np.isnan(mean_ci95([])[0])


def test_summarize_means_over_seeds(runs):
    s = summarize(runs, x="privacy.rate", y="eval/ndcg_at_10").set_index(["model", "privacy.rate"])
    assert len(s) == 6 and set(s["n"]) == {3}
    for (model, rate), ys in NDCG.items():
        row = s.loc[(model, rate)]
        assert row["y_mean"] == pytest.approx(np.mean(ys))
        assert row["y_sd"] == pytest.approx(np.std(ys, ddof=1))
        assert row["y_ci95"] == pytest.approx(T_975_2 * np.std(ys, ddof=1) / math.sqrt(3))
    assert s.loc[("ALS", "0.25"), "x"] == 0.25  # numeric x next to the logged string
    assert s.loc[("ALS", "0"), "_line"] == "ALS"


def test_repeated_runs_of_one_seed_are_averaged_first(runs):
    dup = runs[runs["run_id"] == "ALS-0-0"].assign(run_id="again", **{"metrics.eval/ndcg_at_10": 0.40})
    s = summarize(pd.concat([runs, dup], ignore_index=True), x="privacy.rate", y="eval/ndcg_at_10")
    row = s[(s["model"] == "ALS") & (s["privacy.rate"] == "0")].iloc[0]
    assert row["n"] == 3  # seeds, not runs
    assert row["y_mean"] == pytest.approx(np.mean([(0.30 + 0.40) / 2, 0.32, 0.34]))


def test_x_as_metric_is_averaged_with_its_interval(runs):
    s = summarize(runs, x="attack/reid_rate_m8", y="eval/ndcg_at_10")
    row = s[(s["model"] == "BPR") & (s["privacy.rate"] == "0.5")].iloc[0]
    assert row["x"] == pytest.approx(0.41)  # 0.4 + 0.01 * mean(seed)
    assert row["x_ci95"] == pytest.approx(T_975_2 * 0.01 / math.sqrt(3))
    assert set(s["_line"]) == {"ALS", "BPR"}  # a metric x: one line per model through every rate


def test_relative_cost_and_paired_test_against_x_zero(runs):
    _md, _tex, frame = table(runs, x="privacy.rate", y="eval/ndcg_at_10")
    assert frame.attrs["baseline_rule"] == "privacy.rate = 0"
    f = frame.set_index(["model", "privacy.rate"])
    assert f["is_baseline"].to_dict() == {k: k[1] == "0" for k in NDCG}
    for (model, rate), ys in NDCG.items():
        base = NDCG[(model, "0")]
        assert f.loc[(model, rate), "baseline_mean"] == pytest.approx(np.mean(base))
        assert f.loc[(model, rate), "rel_cost"] == pytest.approx((np.mean(base) - np.mean(ys)) / np.mean(base))
        assert f.loc[(model, rate), "n_pairs"] == 3
        if rate != "0":
            expected = stats.ttest_rel(base, ys).pvalue
            assert f.loc[(model, rate), "p_value"] == pytest.approx(expected, rel=1e-12)
        else:
            assert np.isnan(f.loc[(model, rate), "p_value"])
    assert f.loc[("ALS", "0.5"), "rel_cost"] == pytest.approx((0.32 - 0.26) / 0.32)


def test_fewer_than_two_pairs_is_na():
    values = {("ALS", "0"): [0.30, 0.32, 0.34], ("ALS", "0.5"): [0.25, 0.27, 0.26]}
    runs = build_runs(values)
    runs.loc[runs["params.privacy.rate"] == "0.5", "params.seed"] = ["0", "7", "8"]  # one seed in common
    md, _tex, frame = table(runs, x="privacy.rate", y="eval/ndcg_at_10")
    treated = frame[frame["privacy.rate"] == "0.5"].iloc[0]
    assert treated["n_pairs"] == 1 and np.isnan(treated["p_value"])
    assert md.splitlines()[3].endswith("| n/a |")


@pytest.mark.parametrize(("a", "b"), [([0.3, 0.32, 0.34], [0.29, 0.30, 0.33]), ([1.0, 2.0], [1.5, 2.1]),
                                       ([0.1, 0.2, 0.3, 0.4], [0.1, 0.25, 0.2, 0.5]), ([1.0, 1.0], [1.0, 1.0]),
                                       ([1.0, 2.0, 3.0], [0.5, 1.5, 2.5])])
def test_paired_ttest_matches_scipy(a, b):
    import warnings

    from privrec.reporting.stats import paired_ttest

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = stats.ttest_rel(a, b).pvalue
    got = paired_ttest(np.array(a), np.array(b))
    assert (np.isnan(got) and np.isnan(expected)) or got == pytest.approx(expected, rel=1e-12, abs=1e-300)
    assert np.isnan(paired_ttest(np.array([1.0]), np.array([2.0])))


def test_t_quantile_matches_scipy():
    for n in (2, 3, 5, 30):
        assert ci95_halfwidth(1.0, n) == pytest.approx(stats.t.ppf(0.975, n - 1) / math.sqrt(n), rel=1e-12)


def test_measures_get_their_own_mean_and_interval(runs):
    s = summarize(runs, x="privacy.rate", y="eval/ndcg_at_10", measures=["attack/reid_rate_m8"])
    row = s[(s["model"] == "ALS") & (s["privacy.rate"] == "0.5")].iloc[0]
    assert row["attack/reid_rate_m8_mean"] == pytest.approx(0.41)
    assert row["attack/reid_rate_m8_ci95"] == pytest.approx(T_975_2 * 0.01 / math.sqrt(3))
