"""Big-data plumbing: progress inside stages, the memory estimate and its error before any work."""

from __future__ import annotations

import logging
import pickle

import numpy as np
import pytest

from privrec import experiment, memory, progress
from privrec.data.loaders import Synthetic
from privrec.errors import ConfigError
from privrec.evaluation import evaluate
from privrec.models import ALS


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def _progress_on():
    progress.configure(True)
    yield
    progress._STATE.clear()  # back to the environment's default


def test_progress_lines_when_not_a_tty(caplog):
    clock = _Clock()
    with caplog.at_level(logging.INFO, logger="privrec.progress"):
        bar = progress.Progress("evaluate", 1000, unit="users", tty=False, interval=30.0, clock=clock)
        clock.now = 10.0
        bar.update(100)  # before the interval: no line
        clock.now = 40.0
        bar.update(300)
        clock.now = 50.0
        bar.update(100)  # within 30 s of the last line
        clock.now = 80.0
        bar.update(100)
        bar.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "privrec.progress"]
    assert lines == [
        "privrec: evaluate 400/1,000 users (40%), 10 users/s, elapsed 40s, ETA 1m00s",
        "privrec: evaluate 600/1,000 users (60%), 7.5 users/s, elapsed 1m20s, ETA 53s",
    ]


def test_progress_off_writes_nothing(caplog, capsys):
    progress.configure(False)
    clock = _Clock()
    with caplog.at_level(logging.INFO, logger="privrec.progress"):
        bar = progress.track("fit ALS", 10, unit="iterations", tty=False, interval=0.0, clock=clock)
        for _ in range(10):
            clock.now += 100.0
            bar.update(1)
        bar.close()
    assert not caplog.records and not capsys.readouterr().err
    assert bar.done == 10


def test_lines_reach_stderr_without_logging_configured(capsys, monkeypatch):
    monkeypatch.setattr(logging.getLogger("privrec.progress"), "propagate", False)  # as with no handler at all
    clock = _Clock()
    bar = progress.Progress("attack membership_inference", 4, unit="users", tty=False, interval=1.0, clock=clock)
    clock.now = 2.0
    bar.update(2)
    assert "privrec: attack membership_inference 2/4 users (50%)" in capsys.readouterr().err


def test_the_switch_travels_to_the_attack_process():
    progress.configure(False)
    payload = pickle.dumps(progress.carry({"reidentification": 1}))
    progress.configure(True)
    restored = pickle.loads(payload)  # what the attack worker does
    assert restored == {"reidentification": 1} and type(restored) is dict
    assert progress.enabled() is False


def test_fit_and_evaluation_report_progress(caplog, monkeypatch):
    monkeypatch.setenv(progress.INTERVAL_ENV, "0")  # a line at every update
    data = Synthetic(n_users=300, n_items=80, n_interactions=3000).load()
    with caplog.at_level(logging.INFO, logger="privrec.progress"):
        model = ALS(factors=4, iterations=3).fit(data, rng=np.random.default_rng(0))
        evaluate(model, data, data, cutoffs=(5,), batch_size=100, exclude_seen=False, threads=1)
    lines = [r.getMessage() for r in caplog.records if r.name == "privrec.progress"]
    assert [ln.split(",")[0] for ln in lines if ln.startswith("privrec: fit ALS")] == [
        "privrec: fit ALS 1/3 iterations (33%)", "privrec: fit ALS 2/3 iterations (67%)",
        "privrec: fit ALS 3/3 iterations (100%)"]
    assert [ln.split(" (")[0] for ln in lines if ln.startswith("privrec: evaluate")] == [
        "privrec: evaluate 100/300 users", "privrec: evaluate 200/300 users", "privrec: evaluate 300/300 users"]


# ---------------------------------------------------------------------- memory
def _cfg(**dataset):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from privrec.cli import config_dir

    overrides = ["dataset=synthetic", "tracking.enabled=false", "progress=false",
                 *(f"dataset.{k}={v}" for k, v in dataset.items())]
    with initialize_config_dir(config_dir=str(config_dir()), version_base=None):
        return OmegaConf.to_container(compose("config", overrides=overrides), resolve=True)


def test_memory_estimate_grows_with_the_data():
    small = Synthetic(n_users=200, n_items=50, n_interactions=2000).load()
    big = Synthetic(n_users=2000, n_items=50, n_interactions=20000).load()
    plan = experiment.plan(_cfg())
    a, b = memory.estimate(plan, small), memory.estimate(plan, big, parallel_attacks=True)
    assert set(a.parts) == {"data", "model", "evaluation", "attacks"}
    assert b.parts["data"] > a.parts["data"] and b.parts["attacks"] > a.parts["attacks"]
    assert a.total == sum(a.parts.values())


def test_memory_error_names_the_knob():
    data = Synthetic(n_users=200, n_items=50, n_interactions=2000).load()
    est = memory.estimate(experiment.plan(_cfg()), data)
    with pytest.raises(ConfigError, match=r"^the run's memory estimate must fit 85% of the available memory "
                                          r"\(0\.00 GiB\); got .* GiB \(data .*\)\. Lower .*\.$"):
        memory.check(est, available=1024)
    assert memory.check(est, available=1 << 40) is est


def test_memory_error_comes_before_any_work():
    stages: list[str] = []
    with pytest.raises(ConfigError, match="memory estimate must fit"):
        experiment.run(_cfg(n_users=300, n_items=60, n_interactions=3000), on_stage=stages.append,
                       available_memory=64 << 20)
    assert stages == ["load"]  # failed right after loading: no split, no fit


def test_memory_estimate_is_logged(caplog):
    data = Synthetic(n_users=200, n_items=50, n_interactions=2000).load()
    est = memory.estimate(experiment.plan(_cfg()), data)
    with caplog.at_level(logging.DEBUG, logger="privrec.memory"):
        memory.check(est, available=1 << 40)
    (record,) = [r for r in caplog.records if r.name == "privrec.memory"]
    assert record.getMessage().startswith("memory estimate: ") and "available 1024.00 GiB" in record.getMessage()


def test_run_summary_shows_estimates_not_their_intervals():
    """The one-screen summary of a run with sampled attacks: headline estimates, intervals left to MLflow."""
    from privrec.cli import summary
    from privrec.tracking.record import RunRecord

    metrics = {"eval/n_users": 50.0, "eval/ndcg_at_10": 0.1, "eval/recall_at_20": 0.2,
               "attack/reid_rate_m2": 0.1, "attack/reid_rate_m8": 0.7, "attack/reid_rate_m8_ci_low": 0.68,
               "attack/reid_rate_m8_ci_high": 0.72, "attack/mia_auc_random": 0.9,
               "attack/mia_auc_random_ci_low": 0.89, "attack/mia_auc_random_ci_high": 0.91}
    record = RunRecord(run_name="r", status="FINISHED", start_time=0, end_time=1, metrics=metrics,
                       tags={"privacy.transform": "consent_drop"})
    text = summary(_cfg(), record, where="not tracked")
    (line,) = [ln for ln in text.splitlines() if ln.strip().startswith("attacks:")]
    assert "reid_rate_m8=0.700" in line and "mia_auc_random=0.900" in line and "_ci_" not in line
