"""Confidence weighting as implicit's users apply it: implicit's own BM25 and TF-IDF.

Lives in ``models/`` because only ``models/`` imports implicit (house style); the data layer
(:meth:`privrec.data.Preprocess.model_input`) calls it. Both functions take and return a users x items
matrix and apply implicit's function the way implicit's own code does (``examples/lastfm.py`` for ALS,
``BM25Recommender``/``TFIDFRecommender`` for item-kNN): on the items x users matrix, so a *document* is an
item (BM25's length normalisation is per item: its total weight) and a *term* is a user (the inverse
document frequency is per user: ``log(n_items) - log1p(items of the user)``).
"""

from __future__ import annotations

import scipy.sparse as sp
from implicit.nearest_neighbours import bm25_weight, tfidf_weight

__all__ = ["bm25", "tfidf"]


def bm25(user_items: sp.csr_matrix, *, K1: float = 100.0, B: float = 0.8) -> sp.csr_matrix:
    """``implicit.nearest_neighbours.bm25_weight(user_items.T, K1, B).T`` as users x items CSR (float32).

    For a cell (user u, item i) with value x: ``x (K1 + 1) / (K1 ((1 - B) + B L_i / mean L) + x) * idf_u``,
    ``L_i`` the sum of item i's column, ``idf_u = log(n_items) - log1p(n_u)``, ``n_u`` the user's stored
    cells. ``K1``, ``B``: implicit's names and defaults."""
    out = bm25_weight(sp.csr_matrix(user_items).T, K1=float(K1), B=float(B))
    return sp.csr_matrix(out.T, dtype="float32")


def tfidf(user_items: sp.csr_matrix) -> sp.csr_matrix:
    """``implicit.nearest_neighbours.tfidf_weight(user_items.T).T`` as users x items CSR (float32): a cell
    with value x becomes ``sqrt(x) * idf_u`` (``idf_u`` as in :func:`bm25`)."""
    out = tfidf_weight(sp.csr_matrix(user_items).T)
    return sp.csr_matrix(out.T, dtype="float32")
