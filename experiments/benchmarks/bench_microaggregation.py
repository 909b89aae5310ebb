"""Benchmark ProfileKAnonymity (SVD embedding + MDAV + aggregation + measurement).

Run from the repository root:

    python experiments/benchmarks/bench_microaggregation.py            # synthetic 100k x 20k and ML-100K
    python experiments/benchmarks/bench_microaggregation.py --users 20000 --k 5 10 20

Synthetic data: implicit feedback, ~100 interactions per user on average (log-normal activity; 9.4M
distinct cells at the defaults), item popularity a power law (Zipf exponent 0.9) mixed with 20 taste
clusters. ML-100K: ``u.data`` from ``../shared/datasets/ml-100k`` (repo-relative), ratings as weights.
Prints wall and CPU times and the report's aggregate metrics (no ids, no values).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from privrec.data.dataset import Dataset, Vocabulary
from privrec.privacy.microaggregation import ProfileKAnonymity, mdav, randomized_svd_embedding

ROOT = Path(__file__).resolve().parents[2]
ML100K = ROOT / ".." / "shared" / "datasets" / "ml-100k" / "u.data"


def synthetic(n_users: int = 100_000, n_items: int = 20_000, mean_activity: float = 100.0, *,
              n_clusters: int = 20, seed: int = 0) -> Dataset:
    """Power-law popularity, log-normal activity, each user mixing global popularity with one taste cluster.

    Every user gets ``activity`` distinct items (mean ``mean_activity``, at least 5): half of the draws from
    global Zipf(0.9) popularity, half from the popularity restricted to the user's cluster; 40% extra draws
    make up for repeats, then each user's distinct items are cut to its activity at random.
    """
    rng = np.random.default_rng(seed)
    activity = rng.lognormal(mean=0.0, sigma=1.0, size=n_users)
    activity = np.clip(np.round(activity / activity.mean() * mean_activity), 5, n_items // 4).astype(np.int64)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.9
    rng.shuffle(popularity)
    cluster_of_item = rng.integers(0, n_clusters, n_items)
    cluster_of_user = rng.integers(0, n_clusters, n_users)
    draws = np.ceil(activity * 1.4).astype(np.int64)
    user = np.repeat(np.arange(n_users), draws)
    item = np.empty(len(user), dtype=np.int64)
    from_cluster = rng.random(len(user)) < 0.5
    cdf = np.cumsum(popularity) / popularity.sum()
    item[~from_cluster] = np.searchsorted(cdf, rng.random(int((~from_cluster).sum())), side="right")
    rows = np.flatnonzero(from_cluster)
    rows = rows[np.argsort(cluster_of_user[user[rows]], kind="stable")]
    bounds = np.r_[0, np.cumsum(np.bincount(cluster_of_user[user[rows]], minlength=n_clusters))]
    for c in range(n_clusters):  # popularity-weighted draws inside each cluster
        members = np.flatnonzero(cluster_of_item == c)
        ccdf = np.cumsum(popularity[members]) / popularity[members].sum()
        block = rows[bounds[c]:bounds[c + 1]]
        item[block] = members[np.searchsorted(ccdf, rng.random(len(block)), side="right").clip(max=len(members) - 1)]
    cells = np.sort(user * n_items + item.clip(max=n_items - 1))  # np.unique's hash path is slow here
    cells = cells[np.r_[True, cells[1:] != cells[:-1]]]
    user, item = cells // n_items, cells % n_items
    order = np.argsort(user + rng.random(len(cells)))  # by user, random order within each user
    rank = np.arange(len(cells)) - np.repeat(np.r_[0, np.cumsum(np.bincount(user, minlength=n_users))[:-1]],
                                             np.bincount(user, minlength=n_users))
    keep = np.sort(order[rank < activity[user[order]]])
    user, item = user[keep], item[keep]
    timestamp = 1_000_000_000 + rng.integers(0, 3 * 365 * 86_400, len(user))
    return Dataset(
        users=Vocabulary(np.arange(n_users)), items=Vocabulary(np.arange(n_items)),
        user_idx=user, item_idx=item, weight=np.ones(len(user), dtype=np.float32), timestamp=timestamp,
        name="synthetic",
    )


def movielens_100k(path: Path = ML100K) -> Dataset:
    frame = pd.read_csv(path, sep="\t", names=["user_id", "item_id", "rating", "timestamp"])
    users = Vocabulary(np.sort(frame["user_id"].unique()))
    items = Vocabulary(np.sort(frame["item_id"].unique()))
    return Dataset(
        users=users, items=items, user_idx=users.index_of(frame["user_id"]), item_idx=items.index_of(frame["item_id"]),
        weight=frame["rating"].to_numpy(np.float32), timestamp=frame["timestamp"].to_numpy(np.int64), name="ml-100k",
    )


class Timer:
    """Wall-clock and process CPU time (the machine may be shared: CPU time is the steadier number)."""

    def __enter__(self) -> Timer:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu

    def __str__(self) -> str:
        return f"{self.wall:6.2f} s wall ({self.cpu:6.2f} s CPU)"


def bench(data: Dataset, ks: list[int], dim: int, seed: int) -> None:
    s = data.summary()
    print(f"\n== {data.name}: {s['n_users']:,} users x {s['n_items']:,} items, {s['n_interactions']:,} interactions")
    active = np.flatnonzero(data.user_counts > 0)
    with Timer() as t:
        emb = randomized_svd_embedding(data.to_csr()[active], dim=dim, rng=np.random.default_rng(seed))
    print(f"  embedding (randomized SVD, dim={dim}): {t}")
    for k in ks:
        with Timer() as t:
            labels = mdav(emb, k=k)
        sizes = np.bincount(labels)
        print(f"  MDAV  k={k:<3d} alone: {t}  ({len(sizes):,} groups, sizes {sizes.min()}-{sizes.max()})")
        transform = ProfileKAnonymity(k=k, dim=dim)
        with Timer() as t:
            result = transform.apply(data, rng=np.random.default_rng(seed))
        m = result.report.metrics
        print(f"  apply k={k:<3d} total: {t}  k_achieved={m['k_achieved']:g} "
              f"groups={m['n_groups']:g} empty={m['users_empty_profile']:g} "
              f"retained={m['share_interactions_retained']:.3f} spurious={m['share_spurious_cells']:.3f} "
              f"rows {m['interactions_before']:,.0f} -> {m['interactions_after']:,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--activity", type=float, default=100.0)
    parser.add_argument("--k", type=int, nargs="+", default=[10])
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-synthetic", action="store_true")
    args = parser.parse_args()
    if ML100K.exists():
        bench(movielens_100k(), args.k, args.dim, args.seed)
    else:
        print(f"ML-100K not found under {ML100K.parent}; skipped.")
    if not args.skip_synthetic:
        with Timer() as t:
            data = synthetic(args.users, args.items, args.activity, seed=args.seed)
        print(f"\n(synthetic data generated: {t})")
        bench(data, args.k, args.dim, args.seed)


if __name__ == "__main__":
    main()
