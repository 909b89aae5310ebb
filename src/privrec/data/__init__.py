"""The data layer: core types, loaders, fetching, preprocessing and train/test splits."""

from privrec.data.catalog import CATALOG
from privrec.data.dataset import Dataset, Schema, Vocabulary
from privrec.data.digest import LoadResult, Source
from privrec.data.fetch import describe, fetch_dataset, fetch_movielens_100k
from privrec.data.loaders import AGE_BANDS, Delimited, MovieLens1M, MovieLens100K, Synthetic, age_band
from privrec.data.preprocess import Preprocess
from privrec.data.public import AmazonReviews2023, BookCrossing, LastFM1K, MovieLensRatings
from privrec.data.split import GlobalTemporal, RandomHoldout, Split, TemporalHoldout

__all__ = [
    "AGE_BANDS",
    "AmazonReviews2023",
    "BookCrossing",
    "CATALOG",
    "Dataset",
    "Delimited",
    "GlobalTemporal",
    "LastFM1K",
    "LoadResult",
    "MovieLens100K",
    "MovieLens1M",
    "MovieLensRatings",
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
    "fetch_dataset",
    "fetch_movielens_100k",
]
