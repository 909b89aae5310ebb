"""Conformance checks every attack must pass (subclass in a test file), and the target they run on.

Usage::

    class TestMyAttack(AttackConformance):
        model_metrics = ("my_auc",)            # need a model: missing, with a reason, without one

        def make_attack(self):
            return MyAttack(rounds=2)

        def bad_configs(self):
            return [{"rounds": 0}]
"""

from __future__ import annotations

import dataclasses
import json
import math
import pickle
from typing import Any, ClassVar

import numpy as np
import pytest

from privrec.attacks.base import Attack, AttackResult, AttackTarget
from privrec.data.dataset import Dataset
from privrec.errors import ConfigError, DataValidationError
from privrec.testing.data import tiny_dataset
from privrec.testing.privacy import snapshot

__all__ = ["AttackConformance", "attack_target", "same_result"]

_DEFAULT_MODEL = object()


def attack_target(data: Dataset | None = None, *, model: Any = _DEFAULT_MODEL, seed: int = 0) -> AttackTarget:
    """A small target with a known structure: ``data`` (default: 60 tiny users) split 80/20 into original
    and test interactions; every fifth user opted out (an empty released row, marked in ``withheld``); the
    released data is the rest. ``model`` is fitted on the release (default: a small ALS, which has user
    embeddings; ``None`` for no model; an unfitted model is fitted here)."""
    from privrec.models import ALS

    data = tiny_dataset(n_users=60, n_items=25, seed=3) if data is None else data
    rng = np.random.default_rng(seed)
    is_test = rng.random(data.n_interactions) < 0.2
    original, test = data.subset(~is_test), data.subset(is_test)
    withheld = np.arange(data.n_users) % 5 == 4
    released = original.subset(~withheld[original.user_idx])
    if model is _DEFAULT_MODEL:
        model = ALS(factors=4, iterations=3, regularization=0.1)
    if model is not None and not hasattr(model, "user_items_") and hasattr(model, "fit"):
        model = model.fit(released, rng=np.random.default_rng(seed + 1))
    return AttackTarget(original=original, released=released, test=test, model=model, withheld=withheld)


def same_result(a: AttackResult, b: AttackResult) -> bool:
    """Equal results, NaN equal to NaN (``==`` on the dataclasses says NaN differs from itself)."""
    if a.attack != b.attack or a.missing != b.missing or a.metrics.keys() != b.metrics.keys():
        return False
    return all(a.metrics[k] == b.metrics[k] or (math.isnan(a.metrics[k]) and math.isnan(b.metrics[k]))
               for k in a.metrics)


def _model_state(model: Any) -> tuple[Any, ...]:
    if model is None:
        return ()
    users = np.arange(model.n_users_)
    emb = model.user_embeddings() if callable(getattr(model, "user_embeddings", None)) else None
    return model.score(users).copy(), None if emb is None else emb.copy()


class AttackConformance:
    """Subclass as ``class TestMyAttack(AttackConformance)`` and define the hooks (not collected itself).

    Hooks: ``make_attack()`` (a valid instance, fast on the default target), ``bad_configs()`` (kwargs that
    must raise :class:`ConfigError` with a one-line message), optionally ``make_target(model=...)``
    (default :func:`attack_target`). Class attributes: ``model_metrics`` (metrics that need a model: without
    one they must be in ``missing`` with a reason) and ``embedding_metrics`` (metrics that need user
    embeddings: missing, with a reason, for a model whose ``user_embeddings()`` is ``None``).

    Checks: the contract (frozen keyword-only dataclass, :class:`~privrec.attacks.Attack`), input untouched
    (datasets, mask and model), same seed same result, aggregates only (finite floats or NaN, no arrays,
    no ids), missing metrics with one-line reasons, argument checks at the edge, pickling.
    """

    model_metrics: ClassVar[tuple[str, ...]] = ()
    embedding_metrics: ClassVar[tuple[str, ...]] = ()

    # ------------------------------------------------------------------ hooks
    def make_attack(self) -> Attack:  # pragma: no cover - hook
        raise NotImplementedError

    def bad_configs(self) -> list[dict[str, Any]]:
        return []

    def make_target(self, *, model: Any = _DEFAULT_MODEL) -> AttackTarget:
        return attack_target(model=model)

    # ------------------------------------------------------------------ helpers
    def _run(self, target: AttackTarget | None = None, seed: int = 0) -> AttackResult:
        target = self.make_target() if target is None else target
        return self.make_attack().run(target, rng=np.random.default_rng(seed))

    @staticmethod
    def _check_reasons(result: AttackResult, names: tuple[str, ...]) -> None:
        for name in names:
            assert name not in result.metrics, f"{name} must not be computed here"
            reason = result.missing.get(name)
            assert isinstance(reason, str) and reason.strip(), f"{name} must be missing with a reason"

    # ------------------------------------------------------------------ contract
    def test_satisfies_protocol(self):
        attack = self.make_attack()
        assert isinstance(attack, Attack)
        assert dataclasses.is_dataclass(attack)
        fields = dataclasses.fields(attack)
        assert all(f.kw_only for f in fields if f.init), "hyperparameters must be keyword-only"
        if fields:
            with pytest.raises(dataclasses.FrozenInstanceError):
                setattr(attack, fields[0].name, getattr(attack, fields[0].name))

    def test_input_untouched(self):
        target = self.make_target()
        datasets = {name: snapshot(getattr(target, name)) for name in ("original", "released", "test")}
        withheld = None if target.withheld is None else target.withheld.copy()
        model = _model_state(target.model)
        self.make_attack().run(target, rng=np.random.default_rng(0))
        for name, before in datasets.items():
            after = snapshot(getattr(target, name))
            assert before["checksum"] == after["checksum"], f"{name} was modified"
            assert before["attrs"].equals(after["attrs"]), f"{name}.user_attributes were modified"
        if withheld is not None:
            np.testing.assert_array_equal(target.withheld, withheld)
        for old, new in zip(model, _model_state(target.model), strict=True):
            np.testing.assert_array_equal(old, new, err_msg="the model was modified")

    def test_same_seed_same_result(self):
        a = self._run(seed=7)
        b = self._run(seed=7)
        assert same_result(a, b)

    def test_result_is_aggregate_only(self):
        target = self.make_target()
        result = self._run(target)
        assert isinstance(result, AttackResult)
        assert {f.name for f in dataclasses.fields(result)} == {"attack", "metrics", "missing"}
        assert isinstance(result.attack, str) and result.attack
        for name, value in result.metrics.items():
            assert isinstance(name, str) and name and "@" not in name and "/" not in name
            assert isinstance(value, float) and not isinstance(value, np.ndarray), (
                f"metric {name} must be a float, not {type(value).__name__}")
            assert math.isfinite(value) or math.isnan(value), f"metric {name} must be finite or NaN"
        assert not set(result.metrics) & set(result.missing), "a metric is either measured or missing"
        for name, reason in result.missing.items():
            assert isinstance(name, str) and isinstance(reason, str) and reason.strip() and "\n" not in reason
        text = json.dumps(result.to_dict())
        ids = set(target.original.users.ids[:20].tolist())
        assert not any(f'"{user_id}"' in text for user_id in ids), "a user id is in the result"

    def test_missing_without_model(self):
        result = self._run(self.make_target(model=None))
        self._check_reasons(result, self.model_metrics)

    def test_missing_for_model_without_embeddings(self):
        from privrec.models import Popularity

        target = self.make_target(model=Popularity())
        assert target.model is not None and target.model.user_embeddings() is None
        result = self._run(target)
        self._check_reasons(result, self.embedding_metrics)

    def test_bad_configs_raise(self):
        cls = type(self.make_attack())
        for kwargs in self.bad_configs():
            with pytest.raises(ConfigError) as info:
                cls(**kwargs)
            assert "\n" not in str(info.value)

    def test_arguments_checked_at_the_edge(self):
        attack, target = self.make_attack(), self.make_target()
        with pytest.raises(ConfigError):
            attack.run(target, rng=0)  # type: ignore[arg-type]  # the wrong type under test
        with pytest.raises(DataValidationError):
            attack.run(None, rng=np.random.default_rng(0))  # type: ignore[arg-type]  # the wrong type under test

    def test_pickles(self):
        attack = self.make_attack()
        again = pickle.loads(pickle.dumps(attack))
        assert again == attack
        target = self.make_target()
        result = attack.run(target, rng=np.random.default_rng(3))
        assert same_result(pickle.loads(pickle.dumps(result)), result)
        assert same_result(again.run(target, rng=np.random.default_rng(3)), result)
