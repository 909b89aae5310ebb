"""privrec's Python API (privrec.compose / run / load_runs): the worked example of docs/python_api.md executed as
written, the same composition and one-line errors as the CLI, tracking through the one writer, Hydra's global
state left clean."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import yaml
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ReadonlyConfigError

import privrec
from privrec.cli import config_dir
from privrec.errors import ConfigError, DataWarning, PrivacyGuaranteeError

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "python_api.md"
PRIVREC = [sys.executable, "-m", "privrec.cli"]


@pytest.fixture
def workdir(tmp_path, monkeypatch, shared_data_dir):
    """A fresh working folder with its own store (``$MLFLOW_TRACKING_URI``) and the ML-100K copy."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PRIVREC_DATA_DIR", str(shared_data_dir))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/store.db")
    return tmp_path


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*PRIVREC, *args], check=False, cwd=cwd, env=dict(os.environ), capture_output=True, text=True,
                          timeout=300)


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", markdown, flags=re.DOTALL | re.MULTILINE)


# ---------------------------------------------------------------------------------------------- the worked example
@pytest.mark.slow
def test_the_worked_example_runs_as_written(workdir):
    text = DOC.read_text(encoding="utf-8")
    blocks = python_blocks(text)
    assert len(blocks) >= 4
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)  # noqa: S102 - the documentation's own example
    # what the example promises, checked against what it computed
    assert isinstance(namespace["cfg"], DictConfig) and namespace["cfg"].privacy.rate == 0.5
    result = namespace["result"]
    assert isinstance(result, privrec.RunResult) and result.run_id is None and result.status == "FINISHED"
    assert namespace["ndcg"] == result.metrics["eval/ndcg_at_10"]
    shown = float(re.search(r'ndcg = result\.metrics\["eval/ndcg_at_10"\]\s+# (\d\.\d{4})', text).group(1))
    assert round(namespace["ndcg"], 4) == pytest.approx(shown, abs=1e-4), "docs/python_api.md shows another nDCG"
    assert list(namespace["who_pays"].index) == ["consented", "opted_out"]
    assert namespace["who_pays"]["n_users"].sum() == 943
    runs = namespace["runs"]
    assert len(runs) == 4 and set(runs["status"]) == {"FINISHED"}
    assert sorted(runs["params.privacy.rate"]) == ["0.0", "0.0", "0.5", "0.5"]
    cost = namespace["cost"]
    assert list(cost.index) == ["0.0", "0.5"]
    # the groupby is the mean of the two seeds, by hand
    by_hand = runs.loc[runs["params.privacy.rate"] == "0.5", "metrics.eval/ndcg_at_10"].sum() / 2
    assert cost.loc["0.5", "metrics.eval/ndcg_at_10"] == pytest.approx(by_hand, rel=1e-12)
    assert cost.loc["0.0", "metrics.eval/ndcg_at_10"] > cost.loc["0.5", "metrics.eval/ndcg_at_10"]
    assert namespace["message"].startswith("model must be one of [") and "got 'svd'." in namespace["message"]
    assert not (workdir / "outputs").exists()  # no Hydra folders from Python
    assert not GlobalHydra.instance().is_initialized()


def test_the_readme_python_example_runs(workdir):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.partition("\n## Python API\n")[2].partition("\n## ")[0]
    blocks = python_blocks(section)
    assert blocks, "README.md's Python API section has no python block"
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - the README's own example
    assert 0 < namespace["result"].metrics["eval/ndcg_at_10"] < 1
    assert not (workdir / "store.db").exists() and not (workdir / "outputs").exists()


# ---------------------------------------------------------------------------------------------- same as the CLI
def test_compose_is_what_privrec_run_would_run(workdir):
    overrides = ["model=bpr", "privacy=k_anonymity", "privacy.k=7", "seed=3", "evaluation.cutoffs=[5,10]"]
    proc = _cli(["run", "--cfg", "job", "--resolve", *overrides], workdir)
    assert proc.returncode == 0, proc.stderr
    from_cli = yaml.safe_load(proc.stdout)
    composed = privrec.compose(overrides)
    assert OmegaConf.to_container(composed) == from_cli
    assert composed.privacy.k == 7 and composed.seed == 3 and list(composed.evaluation.cutoffs) == [5, 10]
    assert composed.data_dir == os.environ["PRIVREC_DATA_DIR"]  # resolved, as a run resolves it
    assert "hydra" not in composed


@pytest.mark.parametrize("overrides", [
    ["model=nope"],
    ["privacy.key=s3cr3t"],
    ["nokey=1"],
    ["model=als,bpr"],
    ["seed=${nope}"],
    ["privacy.rate=1.5"],
])
def test_a_bad_override_raises_the_cli_line(workdir, overrides):
    proc = _cli(["run", "attack=none", *overrides], workdir)
    assert proc.returncode == 2
    cli_line = proc.stderr.strip()
    assert cli_line.startswith("privrec: error: ") and "\n" not in cli_line
    with pytest.raises(ConfigError) as err:
        privrec.run(["attack=none", *overrides])
    assert f"privrec: error: {err.value}" == cli_line
    assert "s3cr3t" not in str(err.value)
    assert not (workdir / "store.db").exists()  # nothing ran, nothing was written


def test_the_package_exports_the_api():
    assert privrec.__all__ == sorted(privrec.__all__)
    assert {"RunResult", "compose", "load_runs", "run"} <= set(privrec.__all__)
    assert all(hasattr(privrec, name) for name in privrec.__all__)


def test_overrides_must_be_a_list():
    with pytest.raises(ConfigError, match=r"^overrides must be a list of key=value strings.*got str 'seed=1'\.$"):
        privrec.compose("seed=1")
    with pytest.raises(ConfigError, match=r"^track must be True or False; got 'yes'\.$"):
        privrec.run([], track="yes")


def test_hydra_is_left_as_found_and_calls_repeat():
    assert not GlobalHydra.instance().is_initialized()
    first = privrec.compose(["seed=1"])
    second = privrec.compose(["seed=2"])
    assert (first.seed, second.seed) == (1, 2)
    assert not GlobalHydra.instance().is_initialized()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        with pytest.raises(ConfigError, match=r"^privrec\.compose and privrec\.run must be called outside"):
            privrec.compose([])
        assert GlobalHydra.instance().is_initialized()  # the user's Hydra is untouched
    assert privrec.compose(["seed=3"]).seed == 3


# ---------------------------------------------------------------------------------------------- tracking
def test_untracked_run_writes_nothing(tmp_path, monkeypatch, shared_data_dir):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PRIVREC_DATA_DIR", str(shared_data_dir))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # the default store would be ./mlflow.db
    result = privrec.run(["attack=none", "model.iterations=2", "privacy.rate=0"])
    assert result.run_id is None and result.tracking_uri is None
    assert result.metrics["privacy/users_withheld"] == 0.0
    assert result.params["privacy.rate"] == "0" and result.config.privacy.rate == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no mlflow.db, no outputs/
    with pytest.raises(ReadonlyConfigError):
        result.config.seed = 5
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        empty = privrec.load_runs()
    assert empty.empty and list(empty.columns)[:3] == ["run_id", "run_name", "status"]
    assert [str(w.message) for w in caught if issubclass(w.category, DataWarning)] == [
        "no runs: tracking store sqlite:///mlflow.db does not exist (nothing was tracked there yet)."]
    assert not (tmp_path / "mlflow.db").exists()  # reading did not create a store


@pytest.mark.slow
def test_tracked_runs_read_back_with_their_sweep(workdir):
    single = privrec.run(["attack=none", "seed=4"], track=True)
    assert single.run_id and single.tracking_uri == os.environ["MLFLOW_TRACKING_URI"]
    with pytest.raises(PrivacyGuaranteeError):  # fails in the pipeline, after the config checks: a FAILED run
        privrec.run(["attack=none", "privacy=k_anonymity", "privacy.k=5000"], track=True)
    proc = _cli(["run", "-m", "attack=none", "model.iterations=2", "seed=0,1"], workdir)
    assert proc.returncode == 0, proc.stderr
    runs = privrec.load_runs()
    assert list(runs.columns[:7]) == ["run_id", "run_name", "status", "start_time", "end_time", "parent_run_id",
                                      "parent_run_name"]
    assert len(runs) == 4  # the single run, the failed one, two sweep jobs; the sweep's parent is not a row
    assert list(runs["status"]) == ["FINISHED", "FAILED", "FINISHED", "FINISHED"]
    row = runs.iloc[0]
    assert row["run_id"] == single.run_id and pd_isna(row["parent_run_id"]) and pd_isna(row["parent_run_name"])
    assert row["metrics.eval/ndcg_at_10"] == single.metrics["eval/ndcg_at_10"]
    assert row["params.seed"] == single.params["seed"] == "4"
    assert runs.iloc[1][[c for c in runs.columns if c.startswith("metrics.")]].isna().all()
    jobs = runs.iloc[2:]
    assert jobs["parent_run_id"].nunique() == 1 and jobs["parent_run_id"].iloc[0] not in set(runs["run_id"])
    assert jobs["parent_run_name"].notna().all()
    assert sorted(jobs["params.seed"]) == ["0", "1"]
    assert (runs["start_time"].diff().dropna() >= pd_timedelta(0)).all()  # oldest first
    assert str(runs["start_time"].dt.tz) == "UTC"
    # a second experiment name that does not exist: empty, one warning naming what exists
    with pytest.warns(DataWarning, match=r"experiment 'nope' is not in .*'privrec'"):
        assert privrec.load_runs(experiment="nope").empty


def pd_timedelta(seconds: float):
    import pandas as pd

    return pd.Timedelta(seconds=seconds)


def pd_isna(value) -> bool:
    import pandas as pd

    return bool(pd.isna(value))
