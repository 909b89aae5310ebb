"""Benchmark RandomizedResponse on a large random sparse dataset (never densified).

Default: 1,000,000 users x 100,000 items, ~50,000,000 interactions, OUE with epsilon = 8 (q ~ 3.4e-4,
~34 flips per user, ~59M output cells). Targets: <= 30 s, peak memory <= 3x the input CSR bytes
(float32 data + int32 indices + int32 indptr).

Peak memory is measured two ways: the RSS high-water mark of the process during ``apply`` minus the RSS
before it (Linux: the high-water mark is reset through /proc/self/clear_refs), and, with ``--tracemalloc``
(a second, separately timed run), the peak of traced allocations (numpy reports its buffers to tracemalloc).
Wall and CPU time are both printed: on a shared machine the wall time includes waiting for a CPU.

    /work/venv/bin/python experiments/benchmarks/bench_randomized_response.py
    /work/venv/bin/python experiments/benchmarks/bench_randomized_response.py --variant symmetric --epsilon 20
    /work/venv/bin/python experiments/benchmarks/bench_randomized_response.py --shuffle   # non-canonical input order
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from pathlib import Path

import numpy as np

from privrec.data.dataset import Dataset, Vocabulary
from privrec.privacy.randomized_response import RandomizedResponse


def make_data(n_users: int, n_items: int, nnz: int, *, seed: int, shuffle: bool, timestamps: bool) -> Dataset:
    """Distinct (user, item) pairs, item popularity skewed (item = n_items * u^1.5), canonical order."""
    rng = np.random.default_rng(seed)
    draws = int(nnz * 1.01)  # about 0.5% are duplicate pairs (dropped)
    key = rng.integers(0, n_users, draws, dtype=np.int64) * n_items
    key += (n_items * rng.random(draws) ** 1.5).astype(np.int64)
    key.sort()
    key = key[np.concatenate(([True], key[1:] != key[:-1]))]  # sorted, distinct
    if len(key) > nnz:  # thin uniformly at random to about nnz
        key = key[rng.random(len(key)) < nnz / len(key)]
    users = (key // n_items).astype(np.int32)
    items = (key % n_items).astype(np.int32)
    del key
    if shuffle:
        order = rng.permutation(len(users))
        users, items = users[order], items[order]
        del order
    ts = rng.integers(1_500_000_000, 1_600_000_000, len(users)) if timestamps else None
    return Dataset(
        users=Vocabulary(np.arange(n_users, dtype=np.int64)),
        items=Vocabulary(np.arange(n_items, dtype=np.int64)),
        user_idx=users,
        item_idx=items,
        weight=np.ones(len(users), dtype=np.float32),
        timestamp=ts,
        name="bench",
    )


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return -1


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--nnz", type=int, default=50_000_000)
    ap.add_argument("--epsilon", type=float, default=8.0)
    ap.add_argument("--variant", default="optimized", choices=["optimized", "symmetric"])
    ap.add_argument("--reweight", default="none", choices=["none", "unbiased", "posterior"])
    ap.add_argument("--shuffle", action="store_true", help="interactions in random order (forces the sort path)")
    ap.add_argument("--timestamps", action="store_true", help="give the input timestamps (dropped in the output)")
    ap.add_argument("--tracemalloc", action="store_true", help="also run once under tracemalloc")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    t0 = time.perf_counter()
    data = make_data(args.users, args.items, args.nnz, seed=args.seed, shuffle=args.shuffle, timestamps=args.timestamps)
    csr_bytes = data.n_interactions * (4 + 4) + (data.n_users + 1) * 4
    print(f"input: {data.n_users:,} users x {data.n_items:,} items, {data.n_interactions:,} interactions "
          f"(CSR {csr_bytes / 2**20:,.0f} MiB), built in {time.perf_counter() - t0:.1f} s")
    rr = RandomizedResponse(epsilon=args.epsilon, variant=args.variant, reweight=args.reweight)
    p, q = rr.probabilities
    print(f"{args.variant} epsilon={args.epsilon:g}: p={p:.4g} q={q:.4g}")

    rss_before = _status("VmRSS")
    exact = _reset_peak()
    t0, c0 = time.perf_counter(), time.process_time()
    result = rr.apply(data, rng=np.random.default_rng(args.seed))
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = _status("VmHWM") - rss_before
    out_bytes = result.data.n_interactions * 12
    m = result.report.metrics
    print(f"apply (incl. measure): {seconds:.1f} s wall, {cpu:.1f} s CPU; "
          f"output {result.data.n_interactions:,} interactions (kept {m['actual_kept_1']:,.0f}, "
          f"flipped {m['actual_flips_0_to_1']:,.0f}; expected {m['expected_kept_1']:,.0f} / "
          f"{m['expected_flips_0_to_1']:,.0f}); output arrays {out_bytes / 2**20:,.0f} MiB")
    print(f"peak RSS over baseline: {peak / 2**20:,.0f} MiB = {peak / csr_bytes:.2f}x input CSR"
          + ("" if exact else " (peak RSS could not be reset: upper bound)"))
    del result

    if args.tracemalloc:
        tracemalloc.start()
        t0 = time.perf_counter()
        rr.apply(data, rng=np.random.default_rng(args.seed))
        seconds = time.perf_counter() - t0
        _, traced = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"tracemalloc run: {seconds:.1f} s; peak traced {traced / 2**20:,.0f} MiB "
              f"= {traced / csr_bytes:.2f}x input CSR")


if __name__ == "__main__":
    main()
