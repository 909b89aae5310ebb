"""`privrec release`: what a data holder publishes, checked with independent tools (pandas)."""

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from privrec.cli import config_dir
from privrec.errors import ConfigError, PrivacyLeakWarning
from privrec.release import release

TREATMENTS = ["none", "consent_drop", "k_anonymity", "profile_k_anonymity", "minimization",
              "randomized_response", "pseudonymization", "chain"]


def _cfg(shared, overrides):
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"data_dir={shared}", *overrides])
    return OmegaConf.to_container(cfg, resolve=True)


@pytest.mark.slow
@pytest.mark.parametrize("treatment", TREATMENTS)
def test_release_each_treatment(tmp_path, shared_data_dir, treatment):
    out = tmp_path / "out"
    report = release(_cfg(shared_data_dir, [f"privacy={treatment}"]), out)
    assert sorted(p.name for p in out.iterdir()) == ["interactions.tsv", "privacy_report.json", "users.tsv"]
    inter = pd.read_csv(out / "interactions.tsv", sep="\t", dtype={"user_id": str})
    users = pd.read_csv(out / "users.tsv", sep="\t", dtype=str)
    saved = json.loads((out / "privacy_report.json").read_text())
    assert saved["transform"] == report.transform and saved["released_interactions"] == len(inter)
    assert set(inter["user_id"]) <= set(users["user_id"]) | set(inter["user_id"])
    if treatment == "consent_drop":  # opted-out users withhold their interactions, not their attribute row
        assert len(users) == 943 and inter["user_id"].nunique() == 943 - 236
        assert saved["users_with_interactions"] == 943 - 236 and saved["metrics"]["users_withheld"] == 236
    original = pd.read_csv(shared_data_dir / "ml-100k" / "u.data", sep="\t", header=None, dtype=str)
    assert not (set(inter["user_id"]) | set(users["user_id"])) & set(original[0])  # no original user id
    assert set(inter["item_id"].astype(str)) <= set(original[1])  # public catalogue ids stay
    assert saved["ids_replaced"] == {"users": True, "items": False}


@pytest.mark.slow
def test_k_anonymity_release_rechecked_independently(tmp_path, shared_data_dir):
    out = tmp_path / "out"
    release(_cfg(shared_data_dir, ["privacy=k_anonymity", "privacy.k=10"]), out)
    users = pd.read_csv(out / "users.tsv", sep="\t", dtype=str)
    qi = ["age", "gender", "occupation", "zip_code", "age_band"]
    assert users.groupby(qi).size().min() >= 10


@pytest.mark.slow
def test_profile_k_anonymity_release_rechecked_independently(tmp_path, shared_data_dir):
    out = tmp_path / "out"
    release(_cfg(shared_data_dir, ["privacy=profile_k_anonymity", "privacy.k=5"]), out)
    inter = pd.read_csv(out / "interactions.tsv", sep="\t", dtype=str)
    profiles = inter.sort_values(["user_id", "item_id"]).groupby("user_id")["item_id"].agg(" ".join)
    assert profiles.value_counts().min() >= 5


def test_release_needs_new_folder(tmp_path, shared_data_dir):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    env = dict(os.environ, PRIVREC_DATA_DIR=str(shared_data_dir))
    proc = subprocess.run([sys.executable, "-m", "privrec.cli", "release", f"out={tmp_path / 'full'}"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "new or empty folder" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "privrec.cli", "release", "privacy=k_anonymity", "privacy.k=1",
                           f"out={tmp_path / 'new'}"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, check=False)
    assert proc.returncode == 2 and proc.stderr.strip() == "privrec: error: k_anonymity.k must be >= 2; got 1."
    assert not (tmp_path / "new").exists()


QI = ["age", "gender", "occupation", "zip_code"]


@pytest.mark.slow
def test_consent_then_k_anonymity_is_k_anonymous_on_the_published_table(tmp_path, shared_data_dir):
    """Issue 10: this chain reported k_achieved=5 while users.tsv (opted-out users dropped) had k=1."""
    out = tmp_path / "out"
    report = release(_cfg(shared_data_dir, [
        "privacy=chain", "privacy.steps.consent.rate=0.5", "+privacy.steps.kanon._target_=privrec.privacy.KAnonymity",
        "+privacy.steps.kanon.k=5"]), out)
    users = pd.read_csv(out / "users.tsv", sep="\t", dtype=str)
    inter = pd.read_csv(out / "interactions.tsv", sep="\t", dtype=str)
    sizes = users.groupby(QI).size()
    assert len(users) == 943 and inter["user_id"].nunique() == 943 - 472  # opted-out users' rows are published
    assert sizes.min() == report.metrics["kanon/k_achieved"] == 5 and len(sizes) == report.metrics["kanon/n_classes"]


@pytest.mark.slow
def test_qi_kanon_tradeoff_preset_release_is_k_anonymous(tmp_path, shared_data_dir):
    for k in (2, 10):
        out = tmp_path / f"k{k}"
        report = release(_cfg(shared_data_dir, ["experiment=qi_kanon_tradeoff", f"privacy.steps.kanon.k={k}"]), out)
        sizes = pd.read_csv(out / "users.tsv", sep="\t", dtype=str).groupby(QI).size()
        assert sizes.min() == report.metrics["kanon/k_achieved"] >= k


def _published(out):
    return (pd.read_csv(out / "interactions.tsv", sep="\t", dtype=str),
            pd.read_csv(out / "users.tsv", sep="\t", dtype=str), json.loads((out / "privacy_report.json").read_text()))


@pytest.mark.slow
def test_fresh_user_ids_are_consistent_and_reveal_no_order(tmp_path, shared_data_dir):
    cfg = _cfg(shared_data_dir, ["privacy=none"])
    release(cfg, tmp_path / "a")
    release(cfg, tmp_path / "b")
    with pytest.warns(PrivacyLeakWarning, match="keep_ids=true"):
        release(cfg, tmp_path / "kept", keep_ids=True)
    inter_a, users_a, report_a = _published(tmp_path / "a")
    inter_b, users_b, _ = _published(tmp_path / "b")
    inter_k, users_k, report_k = _published(tmp_path / "kept")
    assert report_a["ids_replaced"] == {"users": True, "items": False}
    assert report_k["ids_replaced"] == {"users": False, "items": False}
    original = pd.read_csv(shared_data_dir / "ml-100k" / "u.user", sep="|", header=None, dtype=str)
    assert set(users_k["user_id"]) == set(original[0]) and not set(users_a["user_id"]) & set(original[0])
    # a fresh mapping every time (from the OS, not the seed), written in the order of the new labels
    assert set(users_a["user_id"]) == {f"u{i:03d}" for i in range(1, 944)}
    assert users_a["user_id"].is_monotonic_increasing and inter_a["user_id"].is_monotonic_increasing
    assert not (users_a.sort_values("user_id")[QI].to_numpy() == users_b.sort_values("user_id")[QI].to_numpy()).all()
    # the same person under one label in both files: (attributes, items) pairs survive the relabelling
    def people(inter, users):
        items = inter.groupby("user_id")["item_id"].agg(lambda s: " ".join(sorted(s)))
        attrs = users.set_index("user_id")[QI].agg("|".join, axis=1)
        return sorted(zip(attrs.loc[items.index], items, strict=True))
    assert people(inter_a, users_a) == people(inter_k, users_k) == people(inter_b, users_b)


@pytest.mark.slow
def test_pseudonymised_items_are_replaced_too(tmp_path, shared_data_dir):
    release(_cfg(shared_data_dir, ["privacy=pseudonymization", "privacy.items=true"]), tmp_path / "out")
    inter, _, report = _published(tmp_path / "out")
    original = pd.read_csv(shared_data_dir / "ml-100k" / "u.data", sep="\t", header=None, dtype=str)
    assert report["ids_replaced"] == {"users": True, "items": True}
    assert not set(inter["item_id"]) & set(original[1]) and inter["item_id"].nunique() == original[1].nunique()
    assert list(report["groups"]["key_source"]) == ["random"]


def test_keep_ids_must_be_a_boolean(tmp_path):
    with pytest.raises(ConfigError, match=r"^release keep_ids must be true or false; got 'yes'\.$"):
        release({"privacy": {"_target_": "privrec.privacy.NoPrivacy"}}, tmp_path / "out", keep_ids="yes")
    assert not (tmp_path / "out").exists()
