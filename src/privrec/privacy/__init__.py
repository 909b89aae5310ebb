"""Privacy treatments: each a frozen dataclass with ``apply(data, *, rng) -> TransformResult``."""

from privrec.privacy.base import PrivacyReport, PrivacyTransform, TransformResult
from privrec.privacy.chain import Chain
from privrec.privacy.consent import ConsentDrop, NoPrivacy
from privrec.privacy.k_anonymity import KAnonymity
from privrec.privacy.microaggregation import ProfileKAnonymity

__all__ = sorted(["Chain", "ConsentDrop", "KAnonymity", "NoPrivacy", "ProfileKAnonymity", "PrivacyReport", "PrivacyTransform", "TransformResult"])
