"""Overhead of privrec's ALS wrapper over calling implicit directly, on real MovieLens-100K.

Both sides do the same work with the same hyperparameters, seed and threads:

(a) implicit: ``AlternatingLeastSquares.fit`` on a prebuilt users x items CSR (BLAS limited to one thread
    while training), batched ``recommend`` of N=20 for every user with seen items filtered, and dense
    scores ``user_factors @ item_factors.T``;
(b) privrec: ``ALS.fit(dataset, rng=...)``, ``recommend(all users, n=20)`` and ``score(all users)``.

Runs alternate (a, b, a, b, ...) after one warm-up each; medians are reported. Target: (b) <= 1.5x (a).
The seeds are chosen so both sides learn identical factors, and the lists are checked to be identical.

    /work/venv/bin/python experiments/benchmarks/bench_training.py [--repeats 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import implicit.cpu.als
import numpy as np
import pandas as pd
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from privrec.data.dataset import Dataset, Vocabulary
from privrec.models import ALS
from privrec.random import int_seed

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("PRIVREC_DATA_DIR", REPO.parent / "shared" / "datasets")) / "ml-100k" / "u.data"

HYPER = {"factors": 64, "regularization": 0.01, "alpha": 1.0, "iterations": 15}
N = 20
SEED = 0


def load(path: Path) -> tuple[sp.csr_matrix, Dataset]:
    """ML-100K as binary implicit feedback: every rating is one interaction of weight 1."""
    frame = pd.read_csv(path, sep="\t", names=["user_id", "item_id", "rating", "timestamp"])
    user_idx, user_ids = pd.factorize(frame["user_id"], sort=True)
    item_idx, item_ids = pd.factorize(frame["item_id"], sort=True)
    data = Dataset(
        users=Vocabulary(np.asarray(user_ids)),
        items=Vocabulary(np.asarray(item_ids)),
        user_idx=user_idx,
        item_idx=item_idx,
        weight=np.ones(len(frame), dtype=np.float32),
        timestamp=frame["timestamp"].to_numpy(np.int64),
        name="ml-100k",
    )
    return data.to_csr(binary=True), data


def run_implicit(user_items: sp.csr_matrix, threads: int) -> tuple[dict[str, float], np.ndarray]:
    users = np.arange(user_items.shape[0])
    random_state = int_seed(np.random.default_rng(SEED))  # what the wrapper passes for the same seed
    t0 = time.perf_counter()
    with threadpool_limits(1, "blas"):
        model = implicit.cpu.als.AlternatingLeastSquares(**HYPER, num_threads=threads, random_state=random_state)
        model.fit(user_items, show_progress=False)
    t1 = time.perf_counter()
    ids, _ = model.recommend(users, user_items[users], N=N, filter_already_liked_items=True)
    t2 = time.perf_counter()
    scores = model.user_factors[users] @ model.item_factors.T
    t3 = time.perf_counter()
    assert scores.shape == user_items.shape
    return {"fit": t1 - t0, "recommend": t2 - t1, "score": t3 - t2, "total": t3 - t0}, ids


def run_privrec(data: Dataset, threads: int) -> tuple[dict[str, float], np.ndarray]:
    users = np.arange(data.n_users)
    t0 = time.perf_counter()
    model = ALS(**HYPER, num_threads=threads).fit(data, rng=np.random.default_rng(SEED))
    t1 = time.perf_counter()
    recs = model.recommend(users, n=N)
    t2 = time.perf_counter()
    scores = model.score(users)
    t3 = time.perf_counter()
    assert scores.shape == (data.n_users, data.n_items)
    return {"fit": t1 - t0, "recommend": t2 - t1, "score": t3 - t2, "total": t3 - t0}, recs.items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="implicit num_threads for both sides")
    parser.add_argument("--target", type=float, default=1.5, help="fail (exit 1) above this total ratio")
    args = parser.parse_args(argv)

    if not DATA.is_file():
        print(f"ML-100K not found at {DATA}; set PRIVREC_DATA_DIR.", file=sys.stderr)
        return 2
    user_items, data = load(DATA)
    print(f"ML-100K: {data.n_users} users, {data.n_items} items, {user_items.nnz} interactions (binary)")
    print(f"ALS {HYPER}, num_threads={args.threads}, N={N}, repeats={args.repeats} (+1 warm-up each)")

    _, ids_a = run_implicit(user_items, args.threads)
    _, ids_b = run_privrec(data, args.threads)
    identical = np.array_equal(ids_a.astype(np.int64), ids_b)
    print(f"same seed -> identical top-{N} lists on both sides: {identical}")

    times: dict[str, list[dict[str, float]]] = {"implicit": [], "privrec": []}
    for _ in range(args.repeats):
        times["implicit"].append(run_implicit(user_items, args.threads)[0])
        times["privrec"].append(run_privrec(data, args.threads)[0])

    phases = ("fit", "recommend", "score", "total")
    med = {side: {p: statistics.median(t[p] for t in runs) for p in phases} for side, runs in times.items()}
    print(f"\n{'median seconds':<16}" + "".join(f"{p:>12}" for p in phases))
    for side in ("implicit", "privrec"):
        print(f"{side:<16}" + "".join(f"{med[side][p]:>12.4f}" for p in phases))
    print(f"{'ratio':<16}" + "".join(f"{med['privrec'][p] / med['implicit'][p]:>11.2f}x" for p in phases))
    ratio = med["privrec"]["total"] / med["implicit"]["total"]
    verdict = "OK" if ratio <= args.target else "ABOVE TARGET"
    print(f"\nprivrec / implicit (total): {ratio:.2f}x (target <= {args.target}x): {verdict}")
    return 0 if ratio <= args.target and identical else 1


if __name__ == "__main__":
    sys.exit(main())
