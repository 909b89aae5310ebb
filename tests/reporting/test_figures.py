"""The frontier figure and write_report: files written, panels chosen from the metrics that exist."""

from __future__ import annotations

import ast
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest
from reporting_helpers import build_runs

from privrec import reporting
from privrec.errors import ConfigError, DataWarning
from privrec.reporting import frontier, panel_columns, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _check_files(paths):
    for path in paths:
        assert path.is_file() and path.stat().st_size > 0, path
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == PNG_MAGIC
        if path.suffix == ".svg":
            assert ET.parse(path).getroot().tag.endswith("svg")


def test_write_report_writes_every_file(runs, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no matplotlib / numpy warnings on ordinary input
        paths = write_report(runs, x="privacy.rate", y="eval/ndcg_at_10", out_dir=tmp_path / "report")
    assert set(paths) == {"frontier.png", "frontier.svg", "table.md", "table.tex", "table.csv"}
    assert all(p.parent == tmp_path / "report" for p in paths.values())
    _check_files(paths.values())
    assert paths["table.md"].read_text().startswith("| model | privacy.rate |")
    csv = pd.read_csv(paths["table.csv"])
    assert len(csv) == 6 and {"line", "y_mean", "y_ci95", "rel_cost", "p_value"} <= set(csv.columns)


def test_svg_is_reproducible(runs, tmp_path):
    a = frontier(runs, x="privacy.rate", y="eval/ndcg_at_10", out_dir=tmp_path / "a", formats=("svg",))[0]
    b = frontier(runs, x="privacy.rate", y="eval/ndcg_at_10", out_dir=tmp_path / "b", formats=("svg",))[0]
    assert a.read_bytes() == b.read_bytes()


def test_default_panels_follow_the_metrics(runs):
    y = "metrics.eval/ndcg_at_10"
    assert panel_columns(runs, y) == [("all users", y), ("consented users", "metrics.eval/consented/ndcg_at_10"),
                                      ("opted-out users", "metrics.eval/opted_out/ndcg_at_10")]
    no_consent = runs.drop(columns=["metrics.eval/consented/ndcg_at_10", "metrics.eval/opted_out/ndcg_at_10"])
    assert panel_columns(no_consent, y) == [("all users", y)]
    assert panel_columns(runs, y, ["overall", "gender"]) == [
        ("all users", y), ("gender = F", "metrics.eval/gender/F/ndcg_at_10"),
        ("gender = M", "metrics.eval/gender/M/ndcg_at_10")]
    assert panel_columns(runs, "metrics.eval/consented/ndcg_at_10") == [("eval/consented/ndcg_at_10",
                                                                         "metrics.eval/consented/ndcg_at_10")]


def test_bad_panels(runs):
    with pytest.raises(ConfigError, match=r"got 'age_band'\. Attributes: gender\."):
        panel_columns(runs, "metrics.eval/ndcg_at_10", "overall,age_band")
    no_consent = runs.drop(columns=["metrics.eval/consented/ndcg_at_10", "metrics.eval/opted_out/ndcg_at_10"])
    with pytest.raises(ConfigError, match="consent"):
        panel_columns(no_consent, "metrics.eval/ndcg_at_10", "consent")
    with pytest.raises(ConfigError, match="overall metric"):
        panel_columns(runs, "metrics.eval/consented/ndcg_at_10", "gender")


def test_metric_x_single_seed_references_and_categories(tmp_path):
    # one seed (no error bars), a NoPrivacy reference without x, and epsilon = inf as a reference
    rr = build_runs({("ALS", "1.0"): [0.2], ("ALS", "8.0"): [0.3], ("ALS", "inf"): [0.33]}, seeds=(0,),
                    param="privacy.epsilon", privacy="privrec.privacy.RandomizedResponse")
    none = build_runs({("ALS", "null"): [0.34]}, seeds=(0,), param="privacy.epsilon",
                      privacy="privrec.privacy.NoPrivacy").drop(columns=["params.privacy.epsilon"])
    both = pd.concat([rr, none], ignore_index=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _check_files(frontier(both, x="privacy.epsilon", y="eval/ndcg_at_10", out_dir=tmp_path / "eps",
                              formats=("png",)))
        _check_files(frontier(both, x="attack/reid_rate_m8", y="eval/ndcg_at_10", out_dir=tmp_path / "m",
                              formats=("png",)))
    mech = build_runs({("ALS", "random"): [0.3, 0.31], ("ALS", "activity"): [0.28, 0.29]}, seeds=(0, 1),
                      param="privacy.mechanism")
    _check_files(frontier(mech, x="privacy.mechanism", y="eval/ndcg_at_10", out_dir=tmp_path / "cat",
                          formats=("png",)))


def test_runs_without_x_that_are_not_the_reference_are_reported(runs, tmp_path):
    other = build_runs({("ALS", "5"): [0.3, 0.31, 0.29]}, param="privacy.k",
                       privacy="privrec.privacy.KAnonymity")
    with pytest.warns(DataWarning, match="1 setting"):
        frontier(pd.concat([runs, other], ignore_index=True), x="privacy.rate", y="eval/ndcg_at_10",
                 out_dir=tmp_path, formats=())


def test_bad_names_fail_before_writing(runs, tmp_path):
    with pytest.raises(ConfigError, match="metric"):
        write_report(runs, x="privacy.rate", y="ndcg", out_dir=tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_public_names_are_sorted_and_importable():
    assert reporting.__all__ == sorted(reporting.__all__)
    assert all(callable(getattr(reporting, name)) for name in reporting.__all__)


def test_reporting_imports_no_mlflow_and_matplotlib_only_when_drawing():
    for path in Path(reporting.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(n.split(".")[0] == "mlflow" for n in names), path.name
        top_level = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        for node in top_level:
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            assert not any(n.split(".")[0] == "matplotlib" for n in names), path.name
