"""Synthetic runs frames (as load_runs returns them) with hand-picked values, so every mean is known."""

from __future__ import annotations

import numpy as np
import pandas as pd

#: eval/ndcg_at_10 per (model, privacy.rate), one value per seed 0, 1, 2.
NDCG = {
    ("ALS", "0"): [0.30, 0.32, 0.34],     # mean 0.32, sd 0.02
    ("ALS", "0.25"): [0.29, 0.30, 0.33],  # mean 0.3066..., paired diffs vs rate 0: 0.01, 0.02, 0.01
    ("ALS", "0.5"): [0.25, 0.27, 0.26],   # mean 0.26
    ("BPR", "0"): [0.20, 0.22, 0.21],     # mean 0.21
    ("BPR", "0.25"): [0.18, 0.21, 0.19],
    ("BPR", "0.5"): [0.15, 0.16, 0.17],   # mean 0.16
}


def build_runs(ndcg=None, *, seeds=(0, 1, 2), param="privacy.rate",
               privacy="privrec.privacy.ConsentDrop") -> pd.DataFrame:
    rows = []
    for (model, value), ys in (ndcg or NDCG).items():
        for seed, y in zip(seeds, ys, strict=True):
            try:
                rate = float(value) if value != "null" else np.nan
            except ValueError:  # a categorical x (privacy.mechanism=random)
                rate = 0.25
            rows.append({
                "run_id": f"{model}-{value}-{seed}",
                "params.dataset._target_": "privrec.data.MovieLens100K",
                "params.model._target_": f"privrec.models.{model}",
                "params.model.factors": "64" if model == "ALS" else "32",
                "params.privacy._target_": privacy,
                f"params.{param}": value,
                "params.seed": str(seed),
                "metrics.eval/ndcg_at_10": y,
                "metrics.eval/consented/ndcg_at_10": y + 0.01,
                "metrics.eval/opted_out/ndcg_at_10": y - 0.05 if rate else np.nan,
                "metrics.eval/gender/F/ndcg_at_10": y - 0.01,
                "metrics.eval/gender/M/ndcg_at_10": y + 0.01,
                "metrics.attack/reid_rate_m8": 0.9 - (rate if np.isfinite(rate) else 0) + 0.01 * seed,
                "metrics.privacy/share_users_withheld": rate,
            })
    return pd.DataFrame(rows)

