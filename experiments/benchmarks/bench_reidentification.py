"""Benchmark the ReIdentification attack (Narayanan & Shmatikov's Scoreboard-RH) on ML-100K and synthetic data.

Run from the repository root:

    python experiments/benchmarks/bench_reidentification.py                      # ML-100K + synthetic 100k x 20k
    python experiments/benchmarks/bench_reidentification.py --users 20000 --known rarest --days 14
    python experiments/benchmarks/bench_reidentification.py --skip-synthetic --repeat 5

Synthetic data (generated with numpy): implicit feedback, ~50 distinct interactions per user on average
(log-normal activity, at least 5), item popularity a power law (Zipf exponent 0.9, shuffled) mixed half and
half with one of 20 taste clusters (each a permutation of the popularity ranks), timestamps uniform over three
years. The attack runs with released = original (the no-privacy baseline: the hardest case, since nothing is
hidden). ML-100K: ``u.data`` from ``../shared/datasets/ml-100k`` (repo-relative). Prints times and aggregate
rates only (no ids, no values).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from privrec.attacks import AttackTarget, ReIdentification
from privrec.data.dataset import Dataset, Vocabulary

ROOT = Path(__file__).resolve().parents[2]
ML100K = ROOT / ".." / "shared" / "datasets" / "ml-100k" / "u.data"


def synthetic(n_users: int = 100_000, n_items: int = 20_000, mean_activity: float = 50.0, *,
              n_clusters: int = 20, seed: int = 0) -> Dataset:
    """Power-law popularity mixed with taste clusters; fully vectorised."""
    rng = np.random.default_rng(seed)
    activity = rng.lognormal(mean=0.0, sigma=1.0, size=n_users)
    activity = np.clip(np.round(activity / activity.mean() * mean_activity * 1.1), 5, n_items // 4).astype(np.int64)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.9
    cdf = np.cumsum(popularity) / popularity.sum()
    by_rank = rng.permutation(n_items)  # item at each global popularity rank
    user = np.repeat(np.arange(n_users), activity)
    rank = np.searchsorted(cdf, rng.random(len(user)), side="right").clip(max=n_items - 1)
    # a cluster's order of the ranks: rank -> (a_c * rank + b_c) mod n_items, a_c coprime with n_items
    steps = np.array([a for a in range(7, 10 * n_items) if np.gcd(a, n_items) == 1][:n_clusters], dtype=np.int64)
    shifts = rng.integers(0, n_items, n_clusters)
    cluster = rng.integers(0, n_clusters, n_users)[user]
    from_cluster = rng.random(len(user)) < 0.5
    rank = np.where(from_cluster, (steps[cluster] * rank + shifts[cluster]) % n_items, rank)
    cells = np.unique(user * n_items + by_rank[rank])
    user, item = cells // n_items, cells % n_items
    timestamp = 1_000_000_000 + rng.integers(0, 3 * 365 * 86_400, len(cells))
    return Dataset(
        users=Vocabulary(np.arange(n_users)), items=Vocabulary(np.arange(n_items)),
        user_idx=user, item_idx=item, weight=np.ones(len(cells), dtype=np.float32), timestamp=timestamp,
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


def bench(data: Dataset, attack: ReIdentification, seed: int, repeat: int) -> None:
    s = data.summary()
    print(f"\n== {data.name}: {s['n_users']:,} users x {s['n_items']:,} items, {s['n_interactions']:,} interactions")
    print(f"   {attack}")
    target = AttackTarget(original=data, released=data, test=data.subset(np.zeros(data.n_interactions, bool)))
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        result = attack.run(target, rng=np.random.default_rng(seed))
        times.append(time.perf_counter() - t)
    print(f"   run: {min(times):7.2f} s (best of {repeat}; all {', '.join(f'{x:.2f}' for x in times)})")
    for m in attack.m:
        r = result.metrics
        print(f"   m={m:<2d} reid_rate={r[f'reid_rate_m{m}']:.3f} unicity={r[f'unicity_m{m}']:.3f} "
              f"targets={r[f'targets_m{m}']:,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--activity", type=float, default=50.0)
    parser.add_argument("--m", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--known", default="random", choices=["random", "rarest"])
    parser.add_argument("--days", type=float, default=None)
    parser.add_argument("--max-targets", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--skip-synthetic", action="store_true")
    args = parser.parse_args()
    attack = ReIdentification(m=tuple(args.m), known=args.known, days=args.days, max_targets=args.max_targets)
    with threadpool_limits(1):
        if ML100K.exists():
            bench(movielens_100k(), attack, args.seed, max(args.repeat, 3))
        else:
            print(f"ML-100K not found under {ML100K.parent}; skipped.")
        if not args.skip_synthetic:
            t = time.perf_counter()
            data = synthetic(args.users, args.items, args.activity, seed=args.seed)
            print(f"\n(synthetic data generated in {time.perf_counter() - t:.1f} s)")
            bench(data, attack, args.seed, args.repeat)


if __name__ == "__main__":
    main()
