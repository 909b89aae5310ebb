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
    if treatment == "consent_drop":
        assert users["user_id"].nunique() == 943 - 236
    if treatment == "pseudonymization":
        original = pd.read_csv(shared_data_dir / "ml-100k" / "u.data", sep="\t", header=None, dtype=str)
        assert not set(inter["user_id"]) & set(original[0])


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
