"""The data layer: core types, loaders, fetching, preprocessing and train/test splits."""

from privrec.data.dataset import Dataset, Schema, Vocabulary
from privrec.data.digest import LoadResult, Source
from privrec.data.fetch import describe, fetch_movielens_100k
from privrec.data.loaders import AGE_BANDS, Delimited, MovieLens1M, MovieLens100K, Synthetic, age_band
from privrec.data.preprocess import Preprocess
from privrec.data.split import GlobalTemporal, RandomHoldout, Split, TemporalHoldout

__all__ = [
    "AGE_BANDS",
    "Dataset",
    "Delimited",
    "GlobalTemporal",
    "LoadResult",
    "MovieLens100K",
    "MovieLens1M",
    "Preprocess",
    "RandomHoldout",
    "Schema",
    "Source",
    "Split",
    "Synthetic",
    "TemporalHoldout",
    "Vocabulary",
    "age_band",
    "describe",
    "fetch_movielens_100k",
]
