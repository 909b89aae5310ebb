"""Attacks on a privacy treatment and the model trained on its output, and an audit of claimed DP guarantees.

Each attack is a frozen, keyword-only dataclass with ``run(target, *, rng) -> AttackResult``; results hold
aggregates only (logged as ``attack/<name>``), never a user id or a record value.
"""

from privrec.attacks.attribute_inference import AttributeInference
from privrec.attacks.base import Attack, AttackResult, AttackTarget
from privrec.attacks.dp_audit import DPAudit
from privrec.attacks.membership_inference import MembershipInference
from privrec.attacks.reidentification import ReIdentification

__all__ = ["Attack", "AttackResult", "AttackTarget", "AttributeInference", "DPAudit", "MembershipInference",
           "ReIdentification"]
