"""Privacy treatments: each a frozen dataclass with ``apply(data, *, rng) -> TransformResult``."""

from privrec.privacy.base import PrivacyReport, PrivacyTransform, TransformResult
from privrec.privacy.chain import Chain
from privrec.privacy.consent import ConsentDrop, NoPrivacy

__all__ = sorted(["Chain", "ConsentDrop", "NoPrivacy", "PrivacyReport", "PrivacyTransform", "TransformResult"])
