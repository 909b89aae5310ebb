"""Conformance checks every privacy transform must pass (subclass in a test file)."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest

from privrec.data.dataset import Dataset
from privrec.errors import ConfigError
from privrec.privacy.base import TransformResult
from privrec.testing.data import tiny_dataset

__all__ = ["TransformConformance", "snapshot"]


def snapshot(data: Dataset) -> dict[str, Any]:
    """Everything a transform must not change in its input, copied."""
    return {
        "checksum": data.checksum(),
        "attrs": data.user_attributes.copy(deep=True),
        "users": data.users.ids.copy(),
        "items": data.items.ids.copy(),
    }


class TransformConformance:
    """Subclass as ``class TestMyTransform(TransformConformance)`` and define the hooks.

    Hooks: ``make_transform()`` (a valid instance), ``bad_configs()`` (kwargs that must raise ConfigError),
    optionally ``make_data()`` and ``transform_class``.
    """

    def make_transform(self):  # pragma: no cover - hook
        raise NotImplementedError

    def bad_configs(self) -> list[dict[str, Any]]:
        return []

    def make_data(self) -> Dataset:
        return tiny_dataset(n_users=40, n_items=25, seed=3)

    def _apply(self, seed: int = 0) -> tuple[Dataset, TransformResult]:
        data = self.make_data()
        return data, self.make_transform().apply(data, rng=np.random.default_rng(seed))

    def test_input_untouched(self):
        data = self.make_data()
        before = snapshot(data)
        self.make_transform().apply(data, rng=np.random.default_rng(0))
        after = snapshot(data)
        assert before["checksum"] == after["checksum"]
        assert before["attrs"].equals(after["attrs"])

    def test_vocabularies_kept(self):
        data, result = self._apply()
        assert isinstance(result, TransformResult)
        assert result.data.n_users == data.n_users and result.data.n_items == data.n_items

    def test_same_seed_same_output(self):
        _, a = self._apply(seed=7)
        _, b = self._apply(seed=7)
        assert a.data.checksum() == b.data.checksum()
        assert a.report == b.report

    def test_report_matches_remeasurement(self):
        data, result = self._apply()
        transform = self.make_transform()
        if not hasattr(transform, "measure"):
            pytest.skip("transform has no measure()")
        again = transform.measure(data, result.data)
        assert again.metrics == pytest.approx(result.report.metrics, nan_ok=True)

    def test_withheld_users_have_no_rows(self):
        _, result = self._apply()
        if result.withheld is not None:
            assert result.withheld.shape == (result.data.n_users,)
            assert not np.any(result.data.user_counts[result.withheld])

    def test_report_is_aggregate_only(self):
        data, result = self._apply()
        text = repr(result.report.to_dict())
        for user_id in data.users.ids[:10]:
            assert f"'{user_id}'" not in text

    def test_bad_configs_raise(self):
        cls = type(self.make_transform())
        for kwargs in self.bad_configs():
            with pytest.raises(ConfigError):
                cls(**kwargs)

    def test_pickles(self):
        transform = self.make_transform()
        _, result = self._apply()
        assert pickle.loads(pickle.dumps(transform)) == transform
        again = pickle.loads(pickle.dumps(result))
        assert again.data.checksum() == result.data.checksum()
