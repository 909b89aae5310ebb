"""A user's own log without attributes, with the default config: the README's commands, the real CLI."""

from __future__ import annotations

import gzip
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import privrec
from privrec import experiment
from privrec.data import Delimited
from privrec.errors import ConfigError

PRIVREC = [sys.executable, "-m", "privrec.cli"]
README = Path(__file__).resolve().parents[1] / "README.md"
N_USERS, N_ITEMS, PER_USER = 100, 40, 12  # 25 opt out: both consent groups have >= 20 users


def write_log(path: Path, *, sep: str = ",", header: bool = True) -> list[str]:
    """A play-count log: N_USERS listeners with PER_USER distinct tracks each (string ids that must never be
    printed), counts 1..200, epoch-second timestamps; columns user, track, plays, time. Returns the ids."""
    rng = np.random.default_rng(7)
    users = [f"listener-{rng.integers(10**8, 10**9)}" for _ in range(N_USERS)]
    lines = [sep.join(["user_id", "track", "plays", "time"])] if header else []
    for u in users:  # test data, written once
        lines.extend(sep.join([u, f"trk{i:04d}", str(int(rng.integers(1, 200))),
                               str(int(1_500_000_000 + rng.integers(0, 10**7)))])
                     for i in rng.choice(N_ITEMS, size=PER_USER, replace=False))
    text = "\n".join(lines) + "\n"
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    return users


def _cli(args, cwd, **env):
    full = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{cwd}/mlflow.db", **env)
    full.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(PRIVREC + list(args), cwd=cwd, env=full, capture_output=True, text=True, timeout=600,
                          check=False)


# ---------------------------------------------------------------------- the default config on a log
def test_default_config_runs_on_a_log_without_attributes(tmp_path, caplog):
    log = tmp_path / "plays.csv"
    write_log(log)
    overrides = ["dataset=delimited", f"dataset.path={log}", "dataset.sep=comma", "dataset.header=true",
                 "dataset.rating_col=2", "dataset.timestamp_col=3", "model.iterations=3"]
    with caplog.at_level("INFO", logger="privrec"):
        result = privrec.run(overrides)
    tags, metrics = result.tags, result.metrics
    assert result.status == "FINISHED"
    reason = "the data has no user attribute 'gender'."
    assert tags["eval.missing.segment_by.gender"] == reason
    assert tags["eval.missing.segment_by.age_band"] == "the data has no user attribute 'age_band'."
    for source in ("released", "factors", "raw_to_released"):
        assert tags[f"attack.missing.gender_auc_{source}"].startswith("the data has no user attribute 'gender'")
    assert not any(k.startswith("attack/gender_") for k in metrics)
    assert not any("/gender/" in k or "/age_band/" in k for k in metrics)
    # everything else ran: evaluation with the consent segments, re-identification and membership inference
    assert metrics["eval/n_users"] == N_USERS and metrics["eval/consented/n_users"] > 0
    assert "attack/reid_rate_m8" in metrics and "attack/mia_auc_test" in metrics
    skipped = [r.getMessage() for r in caplog.records if r.name == "privrec" and "segment_by skips" in r.getMessage()]
    assert len(skipped) == 1  # one line, at plan time (not again after loading)
    assert "['gender', 'age_band']" in skipped[0] and "attribute_inference" in skipped[0]


def test_plan_decides_before_any_work(tmp_path):
    """Delimited without an attribute table knows it has none: the plan skips and refuses before reading."""
    absent = tmp_path / "not-written-yet.csv"  # never read: everything below is decided from the config
    base = ["dataset=delimited", f"dataset.path={absent}"]
    p = experiment.plan(privrec.compose(base))
    assert p.segment_by == () and "attribute_inference" not in p.attacks and "reidentification" in p.attacks
    assert p.missing["eval.missing.segment_by.gender"] == "the data has no user attribute 'gender'."
    with pytest.raises(ConfigError, match=r"^privacy.quasi_identifiers needs user attributes the data does not "
                                          r"have; got none named \(the dataset schema has none\), columns are \[\]"):
        experiment.plan(privrec.compose([*base, "privacy=k_anonymity"]))
    with pytest.raises(ConfigError, match=r"^privacy.quasi_identifiers needs user attributes the data does not "
                                          r"have; got 1 missing: \['age'\]"):
        experiment.plan(privrec.compose([*base, "privacy=k_anonymity", "privacy.quasi_identifiers=[age]"]))
    with pytest.raises(ConfigError, match=r"^privacy.attribute needs user attributes .* 1 missing: \['gender'\]"):
        experiment.plan(privrec.compose([*base, "privacy.mechanism=attribute", "privacy.attribute=gender",
                                         "+privacy.rates={F: 0.4}"]))
    demo = experiment.plan(privrec.compose([*base, "attack.reidentification.demographics=true"]))
    assert "reidentification" not in demo.attacks
    assert demo.missing["attack.missing.reid_rate_m8"].startswith("reidentification.demographics needs quasi")


def test_a_dataset_with_attributes_keeps_its_segments(shared_data_dir):
    """ML-100K has gender and age_band: nothing is skipped (decided after loading, before the split)."""
    p = experiment.plan(privrec.compose([]))
    assert p.segment_by == ("gender", "age_band") and "attribute_inference" in p.attacks and not p.missing
    data = experiment.load_inputs(p.cfg["dataset"], p.cfg["preprocess"], shared_data_dir).data
    fitted = experiment.fit_to_attributes(p, list(data.user_attributes.columns), data.schema)
    assert fitted.segment_by == p.segment_by and fitted.attacks.keys() == p.attacks.keys() and not fitted.missing


# ---------------------------------------------------------------------- dataset.path, dataset.sep
def test_missing_path_is_one_line_saying_it_is_required(tmp_path):
    proc = _cli(["run", "dataset=delimited", "tracking.enabled=false"], tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("privrec: error: dataset.path must be set: it is required")
    assert "???" not in proc.stderr


@pytest.mark.parametrize(("name", "char"), [("tab", "\t"), ("comma", ","), ("semicolon", ";"), ("pipe", "|"),
                                             ("space", " "), ("TAB", "\t"), (";", ";"), ("::", "::")])
def test_separator_names(name, char):
    assert Delimited(path="x", sep=name).sep == char
    assert Delimited(path="x", user_attributes_sep=name).user_attributes_sep == char


def test_a_semicolon_file_loads_by_name(tmp_path):
    write_log(tmp_path / "log.csv", sep=";")
    data = Delimited(path="log.csv", sep="semicolon", header=True, rating_col="plays", timestamp_col="time").load(
        tmp_path)
    assert (data.n_users, data.n_interactions) == (N_USERS, N_USERS * PER_USER)
    assert data.user_attributes.shape == (N_USERS, 0)


# ---------------------------------------------------------------------- data inspect -> run
@pytest.mark.parametrize(("name", "sep", "header"), [("plays.csv.gz", ",", True), ("plays.tsv", "\t", False)])
def test_inspect_prints_overrides_that_load_the_file(tmp_path, name, sep, header):
    log = tmp_path / name
    ids = write_log(log, sep=sep, header=header)
    shown = _cli(["data", "inspect", str(log), "--lines", "200"], tmp_path)
    assert shown.returncode == 0, shown.stderr
    (command,) = [line.strip() for line in shown.stdout.splitlines() if line.strip().startswith("privrec run ")]
    args = shlex.split(command)[2:]
    assert f"dataset.header={'true' if header else 'false'}" in args
    assert {"dataset.user_col=0", "dataset.item_col=1", "dataset.rating_col=2", "dataset.timestamp_col=3"} <= set(args)
    ran = _cli(["run", *args, "attack=none", "tracking.enabled=false", "model.iterations=3"], tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert re.search(rf"overall\s+{N_USERS}\s", ran.stdout)
    # no record value in anything printed: ids, track ids, counts, timestamps
    printed = shown.stdout + shown.stderr + ran.stdout + ran.stderr
    assert not any(u in printed for u in ids) and "trk0" not in printed and "15000" not in printed


# ---------------------------------------------------------------------- the README
def test_readme_own_data_example_runs_verbatim(tmp_path, monkeypatch):
    section = README.read_text().split("## Your own data", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash", 1)[1].split("```", 1)[0].replace("\\\n", " ")
    (inspect_line,) = [line for line in block.splitlines() if line.startswith("privrec data inspect")]
    (run_line,) = [line for line in block.splitlines() if line.startswith("privrec run")]
    name = shlex.split(inspect_line.split("#", 1)[0])[3]
    write_log(tmp_path / name)
    monkeypatch.chdir(tmp_path)
    shown = _cli(shlex.split(inspect_line.split("#", 1)[0])[1:], tmp_path)
    assert shown.returncode == 0, shown.stderr
    # the README's run line, as a shell expands it in that folder ($PWD), run in this process
    args = shlex.split(run_line.replace("$PWD", str(tmp_path)))[2:]
    result = privrec.run(args)
    assert result.status == "FINISHED" and result.params["preprocess.weight"] == "log"
    assert result.metrics["eval/n_users"] == N_USERS


# ---------------------------------------------------------------------- weighting reaches the model
def test_weighting_is_what_the_model_sees_and_changes_the_digest(tmp_path):
    log = tmp_path / "plays.csv"
    write_log(log)
    base = ["dataset=delimited", f"dataset.path={log}", "dataset.sep=comma", "dataset.header=true", "attack=none",
            "privacy=none", "model.iterations=3"]
    runs = {w: privrec.run([*base, f"preprocess.weight={w}"]) for w in ("rating", "bm25")}
    assert runs["rating"].tags["data.preprocessed_sha256"] != runs["bm25"].tags["data.preprocessed_sha256"]
    assert runs["rating"].metrics["eval/ndcg_at_10"] != runs["bm25"].metrics["eval/ndcg_at_10"]
    assert runs["bm25"].params["preprocess.bm25_k1"] == "100.0" and runs["bm25"].params["preprocess.bm25_b"] == "0.8"
    # the run's model input is implicit's BM25 of the training data it is given (and nothing else)
    cfg = experiment.plan(privrec.compose([*base, "preprocess.weight=bm25"])).cfg
    data = experiment.load_inputs(cfg["dataset"], cfg["preprocess"], cfg["data_dir"]).data
    train = data.subset(data.user_idx < N_USERS // 2)
    weighted = experiment.model_input(cfg, train)
    from implicit.nearest_neighbours import bm25_weight

    direct = bm25_weight(train.to_csr().T.tocsr(), K1=100.0, B=0.8).T.tocsr()
    np.testing.assert_allclose(weighted.to_csr().toarray(), direct.toarray(), rtol=1e-5)
