"""The results table: baseline rules, Markdown / LaTeX shape, name errors."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from reporting_helpers import NDCG, build_runs

from privrec.errors import ConfigError
from privrec.reporting import summarize, table


def _no_privacy_runs(values=((0.35, 0.36, 0.37), (0.25, 0.24, 0.26))) -> pd.DataFrame:
    base = build_runs({("ALS", "null"): list(values[0]), ("BPR", "null"): list(values[1])},
                      privacy="privrec.privacy.NoPrivacy")
    return base.drop(columns=["params.privacy.rate"])  # NoPrivacy has no rate param


# ---------------------------------------------------------------------------------------------- baselines
def test_no_privacy_runs_are_the_baseline_when_x_has_no_zero(runs):
    treated = runs[runs["params.privacy.rate"] != "0"]
    both = pd.concat([treated, _no_privacy_runs()], ignore_index=True)
    md, _tex, frame = table(both, x="privacy.rate", y="eval/ndcg_at_10")
    assert frame.attrs["baseline_rule"] == "privacy = NoPrivacy"
    base = frame[frame["is_baseline"]]
    assert sorted(base["model"]) == ["ALS", "BPR"] and (base["privacy.rate"] == "— (NoPrivacy)").all()
    als = frame[(frame["model"] == "ALS") & (frame["privacy.rate"] == "0.5")].iloc[0]
    assert als["rel_cost"] == pytest.approx((0.36 - 0.26) / 0.36)
    assert "Baseline: privacy = NoPrivacy (matched on model)" in md


def test_epsilon_inf_is_the_baseline():
    values = {("ALS", "1.0"): [0.20, 0.21, 0.22], ("ALS", "8.0"): [0.28, 0.30, 0.29],
              ("ALS", "inf"): [0.32, 0.33, 0.34]}
    _md, _tex, frame = table(build_runs(values, param="privacy.epsilon",
                                        privacy="privrec.privacy.RandomizedResponse"),
                             x="privacy.epsilon", y="eval/ndcg_at_10")
    assert frame.attrs["baseline_rule"] == "privacy.epsilon = inf"
    assert frame.loc[frame["is_baseline"], "privacy.epsilon"].tolist() == ["inf"]
    one = frame[frame["privacy.epsilon"] == "1.0"].iloc[0]
    assert one["rel_cost"] == pytest.approx((0.33 - 0.21) / 0.33)


def test_explicit_baselines(runs):
    _md, _tex, frame = table(runs, x="privacy.rate", y="eval/ndcg_at_10", baseline=0.25)
    assert frame.loc[frame["is_baseline"], "privacy.rate"].tolist() == ["0.25", "0.25"]
    _md, _tex, frame = table(runs, x="privacy.rate", y="eval/ndcg_at_10", baseline="privacy.rate=0.5")
    assert frame.attrs["baseline_rule"] == "privacy.rate = 0.5"
    with pytest.raises(ConfigError, match=r"Values: 0, 0\.25, 0\.5"):
        table(runs, x="privacy.rate", y="eval/ndcg_at_10", baseline=0.75)


def test_no_baseline_drops_the_cost_columns(runs):
    md, _tex, frame = table(runs, x="privacy.rate", y="eval/ndcg_at_10", baseline="none")
    assert frame.attrs["baseline_rule"] == "none" and not frame["is_baseline"].any()
    assert "rel. cost" not in md and "No baseline" in md
    only_treated = runs[runs["params.privacy.rate"] != "0"]
    assert table(only_treated, x="privacy.rate", y="eval/ndcg_at_10")[2].attrs["baseline_rule"] == "none"


def test_metric_x_uses_the_swept_privacy_param_at_zero(runs):
    md, _tex, frame = table(runs, x="attack/reid_rate_m8", y="eval/ndcg_at_10")
    assert frame.attrs["baseline_rule"] == "privacy.rate = 0"
    assert md.splitlines()[0] == "| model | privacy.rate | attack/reid_rate_m8 | n | eval/ndcg_at_10 | rel. cost | p |"
    assert frame["privacy.rate"].tolist() == ["0", "0.25", "0.5"] * 2  # rows ordered by the swept param


# ---------------------------------------------------------------------------------------------- settings
def test_a_second_swept_param_splits_lines_and_is_matched(runs):
    more = pd.concat([runs.assign(**{"params.model.factors": "16"}),
                      runs.assign(**{"params.model.factors": "128",
                                     "metrics.eval/ndcg_at_10": runs["metrics.eval/ndcg_at_10"] + 0.1})],
                     ignore_index=True)
    s = summarize(more, x="privacy.rate", y="eval/ndcg_at_10")
    assert sorted(s["_line"].unique()) == ["ALS, model.factors=128", "ALS, model.factors=16",
                                           "BPR, model.factors=128", "BPR, model.factors=16"]
    _md, _tex, frame = table(more, x="privacy.rate", y="eval/ndcg_at_10")
    big = frame[(frame["model"] == "ALS") & (frame["model.factors"] == "128") & (frame["privacy.rate"] == "0.5")]
    assert big.iloc[0]["baseline_mean"] == pytest.approx(0.42)  # its own factor count's rate-0 mean


def test_group_by_another_config_group_or_none(runs):
    s = summarize(runs, x="privacy.rate", y="eval/ndcg_at_10", group="privacy")
    assert set(s["_line"]) == {"ConsentDrop, model=ALS", "ConsentDrop, model=BPR"}  # model.factors is implied
    assert "model.factors" not in s.columns
    s = summarize(runs[runs["params.model._target_"].str.endswith("ALS")], x="privacy.rate",
                  y="eval/ndcg_at_10", group=None)
    assert set(s["_line"]) == {"all runs"} and len(s) == 3


# ---------------------------------------------------------------------------------------------- rendering
def test_markdown_shape(runs):
    md, _tex, frame = table(runs, x="privacy.rate", y="eval/ndcg_at_10", measures=["attack/reid_rate_m8"])
    lines = md.splitlines()
    header, rule, body = lines[0], lines[1], lines[2:2 + len(frame)]
    assert header == "| model | privacy.rate | n | eval/ndcg_at_10 | attack/reid_rate_m8 | rel. cost | p |"
    assert rule == "|:---|---:|---:|---:|---:|---:|---:|"
    assert len(body) == 6 and all(line.count("|") == header.count("|") for line in body)
    assert body[0] == "| ALS | 0 | 3 | 0.3200 ± 0.0497 | 0.9100 ± 0.0248 | baseline | — |"
    assert re.fullmatch(r"\| ALS \| 0\.5 \| 3 \| 0\.2600 ± 0\.0248 \| .* \| \+18\.8% \| 0\.\d{3} \|", body[2])
    assert lines[2 + len(frame)] == "" and lines[3 + len(frame)].startswith("Table: eval/ndcg_at_10 by setting")
    assert "paired t-test (as scipy.stats.ttest_rel)" in md


def test_latex_shape(runs):
    _md, tex, frame = table(runs, x="privacy.rate", y="eval/ndcg_at_10")
    lines = tex.splitlines()
    assert lines[0] == r"\begin{table}[tbp]" and lines[-1] == r"\end{table}"
    assert r"\begin{tabular}{lrrrrr}" in lines
    top, mid, bottom = lines.index(r"\toprule"), lines.index(r"\midrule"), lines.index(r"\bottomrule")
    assert top < mid < bottom
    rows = [ln for ln in lines[mid + 1:bottom] if ln != r"\addlinespace"]
    assert len(rows) == len(frame) and all(ln.count("&") == 5 and ln.endswith(r"\\") for ln in rows)
    assert lines[top + 1] == r"model & privacy.rate & n & eval/ndcg\_at\_10 & rel. cost & p \\"
    assert rows[0] == r"ALS & 0 & 3 & $0.3200 \pm 0.0497$ & baseline & --- \\"
    assert lines[mid + 1:bottom].count(r"\addlinespace") == 1  # between the two models
    assert "ttest\\_rel" in tex and "%" not in tex.replace(r"\%", "")


# ---------------------------------------------------------------------------------------------- errors
def test_unknown_metric_lists_the_metrics(runs):
    with pytest.raises(ConfigError) as err:
        table(runs, x="privacy.rate", y="eval/ndcg_at_11")
    message = str(err.value)
    assert "\n" not in message and "got 'eval/ndcg_at_11'" in message
    assert "eval/ndcg_at_10, eval/opted_out/ndcg_at_10" in message and "Did you mean 'eval/ndcg_at_10'?" in message


def test_unknown_x_lists_swept_params_and_metrics(runs):
    with pytest.raises(ConfigError) as err:
        table(runs, x="privacy.rte", y="eval/ndcg_at_10")
    message = str(err.value)
    assert "\n" not in message and "Swept params: model._target_, model.factors, privacy.rate, seed;" in message
    assert "Did you mean 'privacy.rate'?" in message


def test_unknown_group_and_measure(runs):
    with pytest.raises(ConfigError, match=r"Config groups: dataset, model, privacy"):
        table(runs, x="privacy.rate", y="eval/ndcg_at_10", group="modle")
    with pytest.raises(ConfigError, match=r"measure must name a metric"):
        table(runs, x="privacy.rate", y="eval/ndcg_at_10", measures=["attack/nothing"])
    with pytest.raises(ConfigError, match="non-empty DataFrame"):
        table(runs.iloc[0:0], x="privacy.rate", y="eval/ndcg_at_10")


def test_all_nan_metric_counts_as_missing(runs):
    with pytest.raises(ConfigError, match="must name a metric"):
        table(runs.assign(**{"metrics.eval/new": np.nan}), x="privacy.rate", y="eval/new")


def test_ndcg_fixture_has_the_documented_means():
    assert np.mean(NDCG[("ALS", "0")]) == pytest.approx(0.32)


def test_run_labels_do_not_split_settings_and_any_index_works(runs):
    labelled = runs.assign(**{"params.run_name": runs["run_id"], "params.tracking.tracking_uri": runs["run_id"]})
    doubled = pd.concat([labelled, labelled])  # duplicate index labels, every run twice
    _md, _tex, frame = table(doubled, x="privacy.rate", y="eval/ndcg_at_10")
    assert len(frame) == 6 and set(frame["n"]) == {3}
    assert frame.loc[frame["model"] == "ALS", "rel_cost"].iloc[-1] == pytest.approx((0.32 - 0.26) / 0.32)


def test_default_x_is_the_swept_privacy_param(runs):
    from privrec.reporting import default_x

    assert default_x(runs) == "privacy.rate"
    mixed = runs.assign(**{"params.privacy.mechanism": ["random", "activity"] * 9})
    assert default_x(mixed) == "privacy.rate"  # numeric first
    with pytest.raises(ConfigError, match=r"swept params: model._target_, model.factors\. Pass --x"):
        default_x(runs[runs["params.privacy.rate"] == "0"])


def test_per_run_tuning_choices_are_not_settings():
    """Tuned runs log the hyperparameters each chose (params.tuned.*); they differ between the seeds of one
    setting and must not split it into one-seed rows (like tracking.*)."""
    runs = build_runs()
    plain = table(runs, x="privacy.rate", y="eval/ndcg_at_10")[2]
    runs["params.tuned.factors"] = [str(16 * (1 + i % 3)) for i in range(len(runs))]  # varies within a setting
    tuned = table(runs, x="privacy.rate", y="eval/ndcg_at_10")[2]
    assert len(tuned) == len(plain) and (tuned["n"] == 3).all()
