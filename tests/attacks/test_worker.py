"""Attacks computed in the worker process give exactly the in-process metrics; errors come back as raised."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from attack_helpers import random_dataset

from privrec.attacks import AttackTarget, AttributeInference, MembershipInference, ReIdentification
from privrec.attacks.worker import AttackWorker
from privrec.errors import ConfigError
from privrec.experiment import run_attacks
from privrec.models import ALS


def _inputs():
    n_users, n_items = 60, 40
    gender = np.where(np.arange(n_users) % 3 == 0, "F", "M")
    data = random_dataset(n_users, n_items, seed=3, min_items=3,
                          attrs=pd.DataFrame({"gender": gender}))
    rng = np.random.default_rng(1)
    is_test = rng.random(data.n_interactions) < 0.25
    train, test = data.subset(~is_test), data.subset(is_test)
    withheld = np.arange(n_users) % 4 == 0
    released = train.subset(~withheld[train.user_idx])
    # a real model: the worker process unpickles it (it cannot import the tests' helpers)
    model = ALS(factors=4, iterations=3).fit(released, rng=np.random.default_rng(4))
    split = SimpleNamespace(train=train, test=test)
    treated = SimpleNamespace(data=released, withheld=withheld)
    attacks = {"reidentification": ReIdentification(m=(1, 2)),
               "attribute_inference": AttributeInference(folds=3),
               "membership_inference": MembershipInference()}
    return attacks, split, treated, model


def test_worker_metrics_equal_in_process_metrics():
    attacks, split, treated, model = _inputs()
    expected = run_attacks(attacks, split, treated, model, np.random.default_rng(7))
    worker = AttackWorker()
    worker.submit(attacks, split, treated, model, np.random.default_rng(7))
    metrics, missing, seconds = worker.result()
    worker.close()
    assert (metrics, missing) == expected and seconds > 0
    assert "attack/reid_rate_m2" in metrics and "attack/mia_user_auc" in metrics


def test_worker_reraises_attack_errors():
    _, split, treated, model = _inputs()
    worker = AttackWorker()
    worker.submit({"attribute_inference": AttributeInference(attribute="shoe_size")}, split, treated, model,
                  np.random.default_rng(0))
    with pytest.raises(ConfigError, match="attribute_inference.attribute must be a user attribute"):
        worker.result()
    worker.close()


def test_unused_worker_closes_cleanly():
    worker = AttackWorker()
    worker.close()


def test_raw_attacker_result_is_reused_only_when_rows_are_untouched():
    _, split, treated, model = _inputs()
    target = AttackTarget(original=split.train, released=treated.data, test=split.test, model=model,
                          withheld=treated.withheld)
    attack = AttributeInference(folds=3, sources=("released", "raw_to_released"))
    got = attack.run(target, rng=np.random.default_rng(5)).metrics
    alone = AttributeInference(folds=3, sources=("raw_to_released",)).run(target, rng=np.random.default_rng(5))
    assert got["gender_auc_raw_to_released"] == got["gender_auc_released"]
    assert {k: v for k, v in got.items() if "raw_to_released" in k} == alone.metrics  # computed == reused
    # a treatment that changes rows: nothing is reused
    keep = np.random.default_rng(9).random(split.train.n_interactions) < 0.6
    thinned = AttackTarget(original=split.train, released=split.train.subset(keep), test=split.test, model=model)
    both = attack.run(thinned, rng=np.random.default_rng(5)).metrics
    raw_only = AttributeInference(folds=3, sources=("raw_to_released",)).run(thinned, rng=np.random.default_rng(5))
    assert {k: v for k, v in both.items() if "raw_to_released" in k} == raw_only.metrics
    assert both["gender_auc_raw_to_released"] != both["gender_auc_released"]
