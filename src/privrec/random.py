"""One seed -> independent, named random streams.

``streams(seed)`` spawns one :class:`numpy.random.SeedSequence` child per pipeline stage, always in the
same order, so the split does not change when the privacy treatment draws more numbers, and so on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from privrec.errors import ConfigError

__all__ = ["STREAM_NAMES", "Streams", "streams"]

#: Stage names, in spawn order. Append new stages at the end only: reordering changes every result.
STREAM_NAMES: tuple[str, ...] = ("split", "privacy", "model", "attack", "eval", "data")


@dataclass(frozen=True)
class Streams:
    """Independent generators, one per pipeline stage."""

    seed: int
    split: np.random.Generator
    privacy: np.random.Generator
    model: np.random.Generator
    attack: np.random.Generator
    eval: np.random.Generator
    data: np.random.Generator


def streams(seed: int) -> Streams:
    """Spawn the independent stage generators for ``seed`` (a non-negative integer)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer; got {seed!r}.")
    children = np.random.SeedSequence(int(seed)).spawn(len(STREAM_NAMES))
    gens = {
        name: np.random.Generator(np.random.PCG64(child)) for name, child in zip(STREAM_NAMES, children, strict=True)
    }
    return Streams(seed=int(seed), **gens)


def int_seed(rng: np.random.Generator) -> int:
    """Draw a 31-bit integer seed from ``rng`` (for libraries that want an int)."""
    return int(rng.integers(0, 2**31 - 1))
