"""Privacy treatments: each a frozen dataclass with ``apply(data, *, rng) -> TransformResult``."""

from privrec.privacy.base import PrivacyReport, PrivacyTransform, TransformResult
from privrec.privacy.chain import Chain
from privrec.privacy.consent import ConsentDrop, NoPrivacy
from privrec.privacy.k_anonymity import KAnonymity
from privrec.privacy.microaggregation import ProfileKAnonymity
from privrec.privacy.minimization import Minimization
from privrec.privacy.pseudonymization import Pseudonymization
from privrec.privacy.randomized_response import RandomizedResponse

__all__ = [
    "Chain",
    "ConsentDrop",
    "KAnonymity",
    "Minimization",
    "NoPrivacy",
    "PrivacyReport",
    "PrivacyTransform",
    "ProfileKAnonymity",
    "Pseudonymization",
    "RandomizedResponse",
    "TransformResult",
]
