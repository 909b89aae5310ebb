"""data.sha256 is the digest of the raw files as read: one changed rating is caught by reproduce."""

import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest

from privrec import experiment
from privrec.errors import ConfigError
from privrec.reproduce import check_data_digests

RAW, PRE, FILES = "data.sha256", "data.preprocessed_sha256", "data.sources_sha256"


def _cfg(data_dir):
    return {
        "seed": 0,
        "data_dir": str(data_dir),
        "dataset": {"_target_": "privrec.data.loaders.MovieLens100K"},
        "preprocess": {"_target_": "privrec.data.preprocess.Preprocess", "min_rating": None, "weight": "binary",
                       "user_core": 0, "item_core": 0, "duplicates": "max"},
        "split": {"_target_": "privrec.data.split.RandomHoldout", "fraction": 0.2},
        "privacy": {"_target_": "privrec.privacy.ConsentDrop", "rate": 0.25, "mechanism": "random"},
        "model": {"_target_": "privrec.models.ALS", "factors": 8, "iterations": 2, "regularization": 0.05},
        "fallback": {"_target_": "privrec.models.Popularity"},
        "evaluation": {"cutoffs": [10], "segment_by": []},
    }


def _copy(shared_data_dir, tmp_path):
    shutil.copytree(shared_data_dir / "ml-100k", tmp_path / "data" / "ml-100k")
    return tmp_path / "data"


def _change_one_rating(data_dir):
    """One character: the first line's rating (1-5) becomes another rating."""
    path = data_dir / "ml-100k" / "u.data"
    raw = bytearray(path.read_bytes())
    at = raw.index(b"\t", raw.index(b"\t") + 1) + 1
    raw[at:at + 1] = b"5" if raw[at:at + 1] != b"5" else b"4"
    path.write_bytes(bytes(raw))


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tags(raw="a" * 64, pre="b" * 64, files=None):
    tags = {RAW: raw, PRE: pre}
    if files is not None:
        tags[FILES] = json.dumps(files)
    return tags


# ---------------------------------------------------------------------------------------------- comparison
def test_same_digests_pass_and_runs_without_data_tags_are_not_checked():
    check_data_digests(_tags(), _tags(), where="d")
    check_data_digests({}, _tags(), where="d")


def test_a_changed_raw_file_is_named_in_one_line():
    old = _tags(files={"ml-100k/u.data": "1" * 64, "ml-100k/u.user": "2" * 64})
    new = _tags(raw="c" * 64, files={"ml-100k/u.data": "3" * 64, "ml-100k/u.user": "2" * 64})
    with pytest.raises(ConfigError) as err:
        check_data_digests(old, new, where="/data")
    message = str(err.value)
    assert message == ("reproduce found different data: data.sha256 (the raw input files) must be aaaaaaaaaaaa…; "
                       "got cccccccccccc… under '/data' (changed: ml-100k/u.data).")


def test_same_raw_files_but_other_preprocessed_data_names_that_digest():
    with pytest.raises(ConfigError, match=r"^reproduce found different data: data\.preprocessed_sha256 \(the data "
                                          r"after preprocessing\) must be bbbbbbbbbbbb…; got dddddddddddd… under "
                                          r"'/data' with the same raw files: loading or preprocessing changed\.$"):
        check_data_digests(_tags(), _tags(pre="d" * 64), where="/data")


def test_a_run_recorded_before_the_raw_digest_compares_its_digest_with_the_preprocessed_one():
    legacy = {RAW: "b" * 64}  # then data.sha256 was the digest of the preprocessed data
    check_data_digests(legacy, _tags(), where="d")
    with pytest.raises(ConfigError, match=r"data\.preprocessed_sha256 .* must be bbbbbbbbbbbb…; got eeeeeeeeeeee…"):
        check_data_digests(legacy, _tags(pre="e" * 64), where="d")


# ---------------------------------------------------------------------------------------------- real ML-100K
@pytest.mark.slow
def test_one_changed_rating_changes_the_raw_digest_only(shared_data_dir, tmp_path):
    data_dir = _copy(shared_data_dir, tmp_path)
    before = experiment.run(_cfg(data_dir))
    files = json.loads(before.tags[FILES])
    assert files == {name: _sha256(data_dir / name) for name in ("ml-100k/u.data", "ml-100k/u.user")}
    assert before.tags[PRE] == experiment.load_inputs(_cfg(data_dir)["dataset"], _cfg(data_dir)["preprocess"],
                                                      data_dir).data.checksum()
    _change_one_rating(data_dir)  # in place: the process's data cache must notice
    after = experiment.run(_cfg(data_dir))
    assert after.tags[RAW] != before.tags[RAW]
    # binary weights: the preprocessed data is the same, which is why data.sha256 must hash the raw files
    assert after.tags[PRE] == before.tags[PRE]
    with pytest.raises(ConfigError) as err:
        check_data_digests(before.tags, after.tags, where=str(data_dir))
    assert "data.sha256 (the raw input files)" in str(err.value) and "(changed: ml-100k/u.data)" in str(err.value)
    assert "\n" not in str(err.value)


def test_the_cache_serves_a_dataset_once_per_file_state(shared_data_dir, tmp_path):
    data_dir = _copy(shared_data_dir, tmp_path)
    cfg = _cfg(data_dir)
    first = experiment.load_inputs(cfg["dataset"], cfg["preprocess"], data_dir)
    assert experiment.load_inputs(cfg["dataset"], cfg["preprocess"], data_dir) is first  # cached
    assert experiment.load_data(cfg["dataset"], cfg["preprocess"], data_dir)[0] is first.data
    _change_one_rating(data_dir)
    second = experiment.load_inputs(cfg["dataset"], cfg["preprocess"], data_dir)
    assert second is not first and second.sha256 != first.sha256


@pytest.mark.slow
def test_reproduce_on_a_changed_copy_exits_2_with_one_line(shared_data_dir, tmp_path):
    data_dir = _copy(shared_data_dir, tmp_path)
    env = dict(os.environ, PRIVREC_DATA_DIR=str(data_dir), MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path}/m.db")
    env.pop("HYDRA_FULL_ERROR", None)

    def privrec(*args):
        return subprocess.run([sys.executable, "-m", "privrec.cli", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600, check=False)

    proc = privrec("run", "attack=none", "model.iterations=2", "model.factors=8", "progress=false")
    assert proc.returncode == 0, proc.stderr
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path}/m.db")
    (run,) = client.search_runs([client.get_experiment_by_name("privrec").experiment_id])
    _change_one_rating(data_dir)
    proc = privrec("reproduce", run.info.run_id, "--data-dir", str(data_dir))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert "data.sha256 (the raw input files)" in lines[0] and "ml-100k/u.data" in lines[0]
