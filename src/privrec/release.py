"""``release(cfg, out)``: what a data holder would publish after a privacy treatment (no training).

The treatment is applied to the whole preprocessed dataset (a release has no test split). Written:

- ``interactions.tsv``: ``user_id  item_id  weight  [timestamp]`` for every released interaction;
- ``users.tsv``: ``user_id`` and the user attributes *as released* (generalised by k-anonymity, say), one
  row for **every user** whose attribute row was released -- users who opted out of sharing their behaviour
  included (in privrec's consent model opting out withholds interactions, not the attribute row; the
  experiment's treated data keeps those rows too, and the demographic fallback uses them). Only rows with
  every attribute missing (suppressed by k-anonymity) are left out. So ``users.tsv`` holds exactly the rows
  a k-anonymity step partitioned and measured: its reported ``k_achieved`` is the k of this table;
- ``privacy_report.json``: the treatment's report, measured on exactly these tables (a chain measures every
  step on its final output), plus ``released_users`` (rows of ``users.tsv``), ``released_interactions``,
  ``users_with_interactions`` (distinct users in ``interactions.tsv``) and ``ids_replaced``
  (``{"users": bool, "items": bool}``).

**No original identifier is published** unless ``keep_ids=True``: user ids are replaced by fresh labels
``u<n>`` from a uniformly random permutation of ``1..n_users`` drawn from an OS-seeded generator (never from
the seed, so nobody can redraw it), the same label in both files, and rows are written in the order of the
new labels (the original order would reveal the original ids). Item ids are public catalogue ids and stay,
unless the treatment pseudonymised them (``pseudonymization`` with ``items=true``, alone or in a chain): then
they are replaced the same way (``i<n>``). The mapping lives only in memory during the call.

``keep_ids=True`` writes the ids as the treatment left them (the original ids, for every treatment except
pseudonymization) and emits a :class:`~privrec.errors.PrivacyLeakWarning`: **unsafe** -- anyone holding the
original data can join the release back to it; use it only for a release that stays with the data holder.

Files are written into a temporary sibling folder and renamed into place, so nothing is half-written.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from privrec.config import build
from privrec.data.dataset import Dataset
from privrec.errors import ConfigError, PrivacyLeakWarning
from privrec.privacy.base import PrivacyReport, TransformResult
from privrec.random import streams

__all__ = ["release"]


def release(cfg: Mapping[str, Any], out: str | os.PathLike, *, keep_ids: bool = False) -> PrivacyReport:
    """Apply ``cfg['privacy']`` to the configured dataset and write the release into ``out``.

    ``keep_ids=True`` keeps the ids the treatment released (the original ids, in general): unsafe, see the
    module documentation.
    """
    from privrec.experiment import load_data

    if not isinstance(keep_ids, (bool, np.bool_)):
        raise ConfigError(f"release keep_ids must be true or false; got {keep_ids!r}.")
    transform = build(cfg["privacy"], name="privacy")
    data, _ = load_data(cfg["dataset"], cfg.get("preprocess"), cfg.get("data_dir", "data"))
    result = transform.apply(data, rng=streams(cfg.get("seed", 0)).privacy)
    if keep_ids:
        warnings.warn("release keep_ids=true publishes the ids the treatment left (the original user ids unless "
                      "pseudonymised); anyone with the original data can join the release back to it.",
                      PrivacyLeakWarning, stacklevel=2)
    _write(data, result, Path(out), keep_ids=bool(keep_ids))
    return result.report


def _write(original: Dataset, result: TransformResult, out: Path, *, keep_ids: bool) -> None:
    released = result.data
    replace_users = not keep_ids
    replace_items = not keep_ids and _pseudonymizes_items(result.report)
    avoid = {str(v) for v in original.users.ids.tolist()} | {str(v) for v in original.items.ids.tolist()}
    user_ids, user_rank = (_fresh_ids(released.n_users, "u", avoid) if replace_users
                           else (released.users.ids, np.arange(released.n_users)))
    item_ids, item_rank = (_fresh_ids(released.n_items, "i", avoid) if replace_items
                           else (released.items.ids, np.arange(released.n_items)))

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        rows = np.arange(released.n_interactions)
        if replace_users:  # the order of the new labels: the original order would reveal the original ids
            rows = np.lexsort((rows, item_rank[released.item_idx], user_rank[released.user_idx]))
        frame = pd.DataFrame({
            "user_id": user_ids[released.user_idx[rows]],
            "item_id": item_ids[released.item_idx[rows]],
            "weight": released.weight[rows],
        })
        if released.timestamp is not None:
            frame["timestamp"] = released.timestamp[rows]
        frame.to_csv(tmp / "interactions.tsv", sep="\t", index=False)

        attrs = released.user_attributes.copy()
        keep = np.ones(released.n_users, dtype=bool)  # every user's attribute row, opted out or not
        if attrs.shape[1]:
            keep &= ~attrs.isna().all(axis=1).to_numpy()  # fully suppressed rows are not released
        attrs.insert(0, "user_id", user_ids)
        users = np.flatnonzero(keep)
        users = users[np.argsort(user_rank[users], kind="stable")]
        attrs.iloc[users].to_csv(tmp / "users.tsv", sep="\t", index=False)

        report = result.report.to_dict() | {
            "released_users": len(users),
            "released_interactions": int(released.n_interactions),
            "users_with_interactions": int(np.count_nonzero(released.user_counts)),
            "ids_replaced": {"users": replace_users, "items": replace_items},
        }
        (tmp / "privacy_report.json").write_text(json.dumps(report, indent=2, sort_keys=True))
        if out.exists():
            out.rmdir()  # empty (checked by the caller)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _pseudonymizes_items(report: PrivacyReport) -> bool:
    """Whether the treatment (or a step of a chain) replaced item ids: they are then not public ids."""
    return any((name == "items_pseudonymized" or name.endswith("/items_pseudonymized")) and value > 0
               for name, value in report.metrics.items())


def _fresh_ids(n: int, prefix: str, avoid: set[str]) -> tuple[NDArray[np.object_], NDArray[np.int64]]:
    """Labels ``prefix + zero-padded pi(i)`` for a random permutation ``pi`` of ``1..n`` drawn from the OS,
    and each label's rank in sorted order. Never equal to a string in ``avoid`` (the original ids)."""
    rank = np.random.default_rng(secrets.randbits(256)).permutation(n).astype(np.int64)
    width = len(str(n))
    numbers = np.char.zfill((rank + 1).astype(str), width) if n else np.empty(0, dtype=str)
    while True:
        labels = np.char.add(prefix, numbers).astype(object)
        if not avoid.intersection(labels.tolist()):
            return labels, rank
        prefix += "x"  # longer labels: eventually longer than any original id
