"""Every privacy mechanism privrec has on the same axes: accuracy (nDCG@10) against measured privacy.

Left panel: x = membership inference on the users' true training history (``attack/mia_auc_original``, 0.5 = the
model reveals nothing about which interactions were trained on); right panel: x = re-identification of a user
from 8 known interactions in the released training data (``attack/reid_rate_m8``). y = ``eval/ndcg_at_10``.
One line per mechanism, one point per privacy level (mean over seeds, 95% t-interval bars), the level written
next to the point:

- consent drop, random opt-out, ALS (``experiment=consent_tradeoff``, privacy.mechanism=random): opt-out rate;
- profile k-anonymity (MDAV), ALS (``experiment=kanon_tradeoff``): k, with its k = 1 ``privacy=none`` baseline;
  drawn for ``evaluation.exclude=released`` and, dashed, ``none``;
- randomized response (OUE) + ALS, and the central-DP models DP-ALS and DP-item-kNN
  (``experiment=dp_tradeoff``): epsilon.

All runs are read with :func:`privrec.tracking.query.load_runs` from one MLflow store; every run must have been
tuned (``tuning=grid``) and made with the code that logs ``attack/mia_auc_original``. Central DP releases no
training data, so its re-identification value is that of the raw training data (hollow markers).

    python experiments/dp_tradeoff/mechanisms_figure.py --tracking-uri sqlite:////tmp/dpt/mlflow.db \
        --out experiments/dp_tradeoff

writes ``mechanisms.png``, ``mechanisms.svg`` and ``mechanisms.csv`` (the plotted means) to ``--out``.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from privrec.tracking.query import load_runs

Y = "eval/ndcg_at_10"
PANELS = (("attack/mia_auc_original", "membership inference AUC on the true training history"),
          ("attack/reid_rate_m8", "re-identification rate, 8 known interactions"))


@dataclass(frozen=True)
class Mechanism:
    """One line: the runs of ``experiment`` whose params match ``where``, one point per value of ``level``."""

    label: str
    experiment: str
    where: dict[str, str]
    level: str            # the param that sets the privacy level
    prefix: str           # how a level is written next to its point
    baseline: dict[str, str] | None = None  # runs (same experiment) that are this line's no-privacy point
    linestyle: str = "-"
    central: bool = False  # a central-DP model: no training data is released


ALS, NONE = "privrec.models.ALS", "privrec.privacy.NoPrivacy"
MECHANISMS = (
    Mechanism("consent drop (random) + ALS", "consent_tradeoff",
              {"model._target_": ALS, "privacy.mechanism": "random"}, "privacy.rate", "rate "),
    Mechanism("profile k-anonymity + ALS", "kanon_tradeoff",
              {"model._target_": ALS, "privacy._target_": "privrec.privacy.ProfileKAnonymity",
               "evaluation.exclude": "released"}, "privacy.k", "k=",
              baseline={"model._target_": ALS, "privacy._target_": NONE, "evaluation.exclude": "released"}),
    Mechanism("profile k-anonymity + ALS (exclude=none)", "kanon_tradeoff",
              {"model._target_": ALS, "privacy._target_": "privrec.privacy.ProfileKAnonymity",
               "evaluation.exclude": "none"}, "privacy.k", "k=",
              baseline={"model._target_": ALS, "privacy._target_": NONE, "evaluation.exclude": "none"},
              linestyle="--"),
    Mechanism("randomized response (local DP) + ALS", "dp_tradeoff", {"model._target_": ALS}, "epsilon", "ε="),
    Mechanism("DP-ALS (central DP)", "dp_tradeoff", {"model._target_": "privrec.models.DPALS"}, "epsilon", "ε=",
              central=True),
    Mechanism("DP-item-kNN (central DP)", "dp_tradeoff", {"model._target_": "privrec.models.DPItemKNN"},
              "epsilon", "ε=", central=True),
)


def _select(runs: pd.DataFrame, where: dict[str, str]) -> pd.DataFrame:
    mask = pd.Series(True, index=runs.index)
    for key, value in where.items():
        column = f"params.{key}"
        if column not in runs.columns:
            return runs.iloc[0:0]
        mask &= runs[column].astype("string") == value
    return runs[mask]


def _ci(values: pd.Series) -> float:
    """Half-width of the 95% t-interval of the mean (0 for one value)."""
    values = values.dropna()
    n = len(values)
    return float(stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0


def points(mechanism: Mechanism, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per privacy level of ``mechanism``: n, mean and CI half-width of y and of each panel's x."""
    chosen = _select(runs, mechanism.where)
    if chosen.empty:
        raise SystemExit(f"{mechanism.label}: no runs in experiment {mechanism.experiment!r} with {mechanism.where}")
    levels = chosen[f"params.{mechanism.level}"].astype(str)
    parts = [(level, chosen[levels == level]) for level in levels.unique()]
    if mechanism.baseline is not None:
        parts.append(("none", _select(runs, mechanism.baseline)))
    rows = []
    for level, group in parts:
        row = {"mechanism": mechanism.label, "level": level, "n": len(group)}
        for metric in (Y, *(x for x, _ in PANELS)):
            values = group[f"metrics.{metric}"]
            row[metric], row[f"{metric} ci"] = float(values.mean()), _ci(values)
        rows.append(row)
    frame = pd.DataFrame(rows)
    order = frame["level"].map(lambda v: -math.inf if v == "none" else float(v))
    # from no privacy to the most private: rate and k grow with privacy, epsilon falls
    descending = mechanism.level == "epsilon"
    return frame.iloc[np.argsort(-order.to_numpy() if descending else order.to_numpy(), kind="stable")]


def draw(table: pd.DataFrame, out: Path) -> list[Path]:
    fig, axes = plt.subplots(1, 2, figsize=(13, 6.4), sharey=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    markers = "osD^vP"
    for i, mechanism in enumerate(MECHANISMS):
        rows = table[table["mechanism"] == mechanism.label]
        colour = colours[(i - 1 if i >= 2 else i) % len(colours)]  # both k-anonymity lines share a colour
        for ax, (x, _) in zip(axes, PANELS, strict=True):
            hollow = mechanism.central and x == "attack/reid_rate_m8"
            ax.errorbar(rows[x], rows[Y], xerr=None if hollow else rows[f"{x} ci"], yerr=rows[f"{Y} ci"], color=colour,
                        linestyle=mechanism.linestyle, marker=markers[i % len(markers)], markersize=5,
                        capsize=2, linewidth=1.2, markerfacecolor="none" if hollow else colour,
                        label=mechanism.label + (" (no data released)" if hollow else ""))
            if mechanism.linestyle == "--":
                continue  # the dashed k-anonymity line shares the levels of the solid one
            for _, row in rows.iterrows():
                text = "none" if row["level"] == "none" else f"{mechanism.prefix}{row['level']}"
                if text == "none" or (hollow and row["level"] not in ("inf", "0.1")):
                    continue
                ax.annotate(text, (row[x], row[Y]), textcoords="offset points", xytext=(4, 3), fontsize=7,
                            color=colour)
    for ax, (_, label) in zip(axes, PANELS, strict=True):
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("nDCG@10 (all users)")
    axes[0].axvline(0.5, color="grey", linewidth=0.8, linestyle=":")
    handles, labels = axes[1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle("What accuracy each mechanism buys at equal measured privacy (ML-100K, tuned, mean ± 95% CI "
                 "over 5 seeds)", fontsize=11)
    fig.tight_layout(rect=(0, 0.09, 1, 1))
    paths = [out / "mechanisms.png", out / "mechanisms.svg"]
    for path in paths:
        fig.savefig(path, dpi=150 if path.suffix == ".png" else None)
    plt.close(fig)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", default=None, help="MLflow store (default: $MLFLOW_TRACKING_URI)")
    parser.add_argument("--out", default="experiments/dp_tradeoff", help="output folder")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    experiments = {m.experiment for m in MECHANISMS}
    runs = {name: load_runs(args.tracking_uri, experiment=name) for name in sorted(experiments)}
    table = pd.concat([points(m, runs[m.experiment]) for m in MECHANISMS], ignore_index=True)
    table.to_csv(out / "mechanisms.csv", index=False, float_format="%.6g")
    paths = [*draw(table, out), out / "mechanisms.csv"]
    print(f"mechanisms figure from {sum(map(len, runs.values()))} runs: {', '.join(str(p) for p in paths)}")


if __name__ == "__main__":
    main()
