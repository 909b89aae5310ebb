"""Benchmark KAnonymity (Mondrian) on ML-100K, on 1M synthetic users, and against anonypy's Mondrian.

Run from the repository root:

    python experiments/benchmarks/bench_mondrian.py                      # all three parts
    python experiments/benchmarks/bench_mondrian.py --users 1000000 --k 5 10 --compare-users 20000

Parts: (a) ML-100K's 943 users (``u.user`` from ``../shared/datasets/ml-100k``, repo-relative, or
``$PRIVREC_DATA_DIR/ml-100k``); (b) a synthetic table of ``--users`` users with four quasi-identifiers: age
(int, 7-80), gender (2 values), occupation (20 values, Zipf-skewed) and a 5-digit zip code (30k values
clustered in 300 prefixes); (c) ``--compare-users`` synthetic users through the ``anonypy`` package's
Mondrian (pure pandas, one Python step per partition) and through ours, same k, printing the speed ratio.

anonypy is imported lazily and only for part (c); install it in a separate environment, for example::

    python3 -m venv /tmp/benchvenv
    /tmp/benchvenv/bin/pip install anonypy pandas numpy scipy
    /tmp/benchvenv/bin/pip install -e . --no-deps
    /tmp/benchvenv/bin/python experiments/benchmarks/bench_mondrian.py

Times are wall and process CPU (the machine may be shared: CPU time is the steadier number). "partition"
is the Mondrian recursion alone (on integer codes already built); "apply" is the whole transform: encoding,
partitioning, generalised strings, the released Dataset and the report measured on it. Prints aggregate
metrics only (no ids, no values).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from privrec.data.dataset import Dataset, Schema, Vocabulary
from privrec.privacy.k_anonymity import KAnonymity, _encode, _mondrian

ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = Path(os.environ.get("PRIVREC_DATA_DIR", ROOT / ".." / "shared" / "datasets"))
QIS = ("age", "gender", "occupation", "zip_code")
SCHEMA = Schema(quasi_identifiers=QIS, sensitive=("band",), numeric=("age",), hierarchies={"zip_code": "prefix"})


class Timer:
    """Wall-clock and process CPU time."""

    def __enter__(self) -> Timer:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu

    def __str__(self) -> str:
        return f"{self.wall:7.3f} s wall ({self.cpu:7.3f} s CPU)"


def attribute_dataset(attrs: pd.DataFrame, name: str) -> Dataset:
    """A Dataset with these user attributes and no interactions (k-anonymity only reads the attributes)."""
    return Dataset(
        users=Vocabulary(np.arange(len(attrs))), items=Vocabulary(np.arange(1)),
        user_idx=np.zeros(0), item_idx=np.zeros(0), weight=np.zeros(0),
        user_attributes=attrs.reset_index(drop=True), schema=SCHEMA, name=name,
    )


def movielens_users(path: Path) -> pd.DataFrame:
    users = pd.read_csv(path, sep="|", header=None, names=["user_id", "age", "gender", "occupation", "zip_code"],
                        dtype={"zip_code": str})
    users["band"] = np.where(users["age"] < 35, "under 35", "35+")
    return users.drop(columns="user_id")


def synthetic_users(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    occupations = np.array([f"occupation{i:02d}" for i in range(20)])
    prefixes = rng.integers(0, 1000, 300)  # zip codes cluster in a few 3-digit areas, as real ones do
    pool = np.unique(prefixes[rng.integers(0, 300, 30_000)] * 100 + rng.integers(0, 100, 30_000))
    ages = rng.integers(7, 81, n)
    return pd.DataFrame({
        "age": ages,
        "gender": rng.choice(np.array(["F", "M"]), n, p=[0.3, 0.7]),
        "occupation": occupations[np.minimum(rng.zipf(1.6, n) - 1, 19)],
        "zip_code": np.char.zfill(pool[rng.integers(0, len(pool), n)].astype(str), 5),
        "band": np.where(ages < 35, "under 35", "35+"),
    })


def partition_only(data: Dataset, k: int) -> tuple[Timer, int]:
    transform = KAnonymity(k=k)
    encoded = [_encode(data.user_attributes[q], q, transform._kind(data, q)) for q in QIS]
    with Timer() as t:
        _, sizes, _ = _mondrian(encoded, k=k, strict=True, sens=None, n_sens=0, l=0, budget=0)
    return t, len(sizes)


def bench(data: Dataset, ks: list[int]) -> dict[int, Timer]:
    print(f"\n== {data.name}: {data.n_users:,} users x {len(QIS)} quasi-identifiers")
    applied = {}
    for k in ks:
        t_part, n_parts = partition_only(data, k)
        with Timer() as t:
            result = KAnonymity(k=k).apply(data, rng=np.random.default_rng(0))
        m = result.report.metrics
        print(f"  k={k:<3d} partition: {t_part}  ({n_parts:,} partitions)")
        print(f"  k={k:<3d} apply:     {t}  k_achieved={m['k_achieved']:g} classes={m['n_classes']:,.0f} "
              f"mean_size={m['mean_class_size']:.2f} ncp={m['ncp']:.3f} discernibility={m['discernibility']:,.0f}")
        applied[k] = t
    return applied


def compare_anonypy(n: int, k: int) -> None:
    print(f"\n== anonypy vs privrec: {n:,} synthetic users, k={k}")
    try:
        from anonypy.anonypy import anonymize  # lazy: only this part needs anonypy
        from anonypy.mondrian import Mondrian
    except ImportError:
        print("  anonypy is not installed; skipped. Install it in a separate environment:\n"
              "    python3 -m venv /tmp/benchvenv && /tmp/benchvenv/bin/pip install anonypy pandas numpy scipy\n"
              "    /tmp/benchvenv/bin/pip install -e . --no-deps && "
              "/tmp/benchvenv/bin/python experiments/benchmarks/bench_mondrian.py")
        return
    attrs = synthetic_users(n, seed=1)
    df = attrs.copy()
    for column in ("gender", "occupation", "zip_code", "band"):  # anonypy treats category dtype as categorical
        df[column] = df[column].astype("category")
    with Timer() as t_theirs:
        partitions = Mondrian(df, list(QIS), "band").partition(k)
    with Timer() as t_theirs_gen:
        anonymize(df, partitions, list(QIS), "band")  # generalisation (what Preserver runs after partition)
    sizes = np.array([len(p) for p in partitions])
    data = attribute_dataset(attrs, "compare")
    t_ours, n_ours = partition_only(data, k)
    with Timer() as t_apply:
        result = KAnonymity(k=k).apply(data, rng=np.random.default_rng(0))
    print(f"  anonypy  partition: {t_theirs}  ({len(sizes):,} partitions, smallest {sizes.min()})")
    print(f"  anonypy  generalisation: {t_theirs_gen}")
    print(f"  privrec  partition: {t_ours}  ({n_ours:,} partitions)")
    print(f"  privrec  apply:     {t_apply}  (k_achieved={result.report.metrics['k_achieved']:g}, "
          f"{result.report.metrics['n_classes']:,.0f} released classes)")
    print(f"  speed-up, partition alone:   {t_theirs.wall / t_ours.wall:8.0f}x wall")
    print(f"  speed-up, whole anonymisation: {(t_theirs.wall + t_theirs_gen.wall) / t_apply.wall:6.0f}x wall "
          "(anonypy partition + generalisation vs privrec apply, which also builds the Dataset and measures "
          "the report)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000, help="synthetic users for part (b)")
    parser.add_argument("--k", type=int, nargs="+", default=[5, 10])
    parser.add_argument("--compare-users", type=int, default=20_000, help="users for part (c); 0 skips it")
    parser.add_argument("--compare-k", type=int, default=5)
    args = parser.parse_args()

    path = DATA_DIR / "ml-100k" / "u.user"
    if path.exists():
        bench(attribute_dataset(movielens_users(path), "ml-100k users"), args.k)
    else:
        print(f"ML-100K not found at {path}; skipped (set PRIVREC_DATA_DIR).")
    if args.users:
        with Timer() as t:
            attrs = synthetic_users(args.users)
        print(f"\n(synthetic table generated: {t})")
        bench(attribute_dataset(attrs, "synthetic"), args.k)
    if args.compare_users:
        compare_anonypy(args.compare_users, args.compare_k)


if __name__ == "__main__":
    main()
