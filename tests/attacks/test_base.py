import pickle

import numpy as np
import pytest
from attack_helpers import empty_like, make_dataset, random_dataset

from privrec import attacks
from privrec.attacks import (
    Attack,
    AttackResult,
    AttackTarget,
    AttributeInference,
    MembershipInference,
    ReIdentification,
)
from privrec.errors import DataValidationError


def test_all_is_sorted_and_complete():
    assert attacks.__all__ == sorted(attacks.__all__)
    public = {name for name in vars(attacks) if not name.startswith("_") and name[0].isupper()}
    assert public == set(attacks.__all__)


@pytest.mark.parametrize("attack", [ReIdentification(), AttributeInference(), MembershipInference()])
def test_attacks_follow_the_contract(attack):
    assert isinstance(attack, Attack)
    with pytest.raises(AttributeError):
        attack.foo = 1  # frozen
    assert pickle.loads(pickle.dumps(attack)) == attack
    with pytest.raises(TypeError):
        type(attack)(1)  # keyword-only


def test_target_checks_vocabularies_and_mask():
    data = random_dataset(n_users=10, n_items=8)
    other = make_dataset([0], [0], 10, 9)
    with pytest.raises(DataValidationError, match=r"^AttackTarget\.released must share the user and item indices"):
        AttackTarget(original=data, released=other, test=data)
    with pytest.raises(DataValidationError, match=r"^AttackTarget\.test must be a privrec Dataset; got list\.$"):
        AttackTarget(original=data, released=data, test=[])
    with pytest.raises(DataValidationError, match=r"^AttackTarget\.withheld must be a boolean mask of shape \(10,\)"):
        AttackTarget(original=data, released=data, test=data, withheld=np.zeros(9, dtype=bool))
    mask = np.zeros(10, dtype=bool)
    target = AttackTarget(original=data, released=data, test=empty_like(data), withheld=mask)
    mask[0] = True
    assert not target.withheld.any()  # a private, read-only copy
    assert not target.withheld.flags.writeable


def test_result_to_dict():
    res = AttackResult(attack="x", metrics={"a": 1.0}, missing={"b": "why"})
    assert res.to_dict() == {"attack": "x", "metrics": {"a": 1.0}, "missing": {"b": "why"}}
    assert AttackResult(attack="y").missing == {}


def test_conformance_module_all_is_sorted():
    import privrec.testing.attacks as conformance

    assert conformance.__all__ == sorted(conformance.__all__)
