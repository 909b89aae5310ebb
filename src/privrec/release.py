"""``release(cfg, out)``: what a data holder would publish after a privacy treatment (no training).

The treatment is applied to the whole preprocessed dataset (a release has no test split). Written:

- ``interactions.tsv``: ``user_id  item_id  weight  [timestamp]`` for every released interaction;
- ``users.tsv``: ``user_id`` and the user attributes *as released* (generalised by k-anonymity, say);
  users who released nothing (opted out, suppressed) are left out;
- ``privacy_report.json``: the report measured on the output.

Files are written into a temporary sibling folder and renamed into place, so nothing is half-written.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from privrec.config import build
from privrec.privacy.base import PrivacyReport
from privrec.random import streams

__all__ = ["release"]


def release(cfg: Mapping[str, Any], out: str | os.PathLike) -> PrivacyReport:
    """Apply ``cfg['privacy']`` to the configured dataset and write the release into ``out``."""
    from privrec.experiment import load_data

    transform = build(cfg["privacy"], name="privacy")
    data, _ = load_data(cfg["dataset"], cfg.get("preprocess"), cfg.get("data_dir", "data"))
    result = transform.apply(data, rng=streams(cfg.get("seed", 0)).privacy)
    released = result.data
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        frame = pd.DataFrame({
            "user_id": released.users.id_of(released.user_idx),
            "item_id": released.items.id_of(released.item_idx),
            "weight": released.weight,
        })
        if released.timestamp is not None:
            frame["timestamp"] = released.timestamp
        frame.to_csv(tmp / "interactions.tsv", sep="\t", index=False)
        attrs = released.user_attributes.copy()
        keep = released.user_counts > 0
        if attrs.shape[1]:
            keep &= ~attrs.isna().all(axis=1).to_numpy()  # fully suppressed rows are not released
        attrs.insert(0, "user_id", released.users.ids)
        attrs[keep].to_csv(tmp / "users.tsv", sep="\t", index=False)
        report = result.report.to_dict() | {"released_users": int(np.count_nonzero(keep)),
                                            "released_interactions": int(released.n_interactions)}
        (tmp / "privacy_report.json").write_text(json.dumps(report, indent=2, sort_keys=True))
        if out.exists():
            out.rmdir()  # empty (checked by the caller)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result.report
