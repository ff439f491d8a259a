"""Two sparse feature matrices joined side by side without scipy's general `hstack`.

DIET joins the four featurizers' sparse matrices of each message with scipy's general
block-matrix `hstack`, one pair at a time; for two blocks side by side the entries are
concatenated with the column offset, which gives the same matrix.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
from rasa.shared.nlu.training_data.features import Features
from sanic import Sanic

from bot.patches import put_in_place, rasa_original

REPLACES = ("rasa.shared.nlu.training_data.features.Features._combine_sparse_features",)
CHECKED_RASA_VERSION = "3.6.21"


def stack_sparse_features_directly() -> None:
    """Join two sparse feature matrices side by side without scipy's bmat."""
    original = rasa_original(Features, "_combine_sparse_features")

    def _combine_sparse_features(self: Features, additional_features: Features) -> None:
        left, right = self.features, additional_features.features
        if left.shape[0] != right.shape[0]:
            original(self, additional_features)  # raises with Rasa's explanation
            return
        left, right = left.tocoo(), right.tocoo()
        self.features = scipy.sparse.coo_matrix(
            (
                np.concatenate([left.data, right.data]),
                (
                    np.concatenate([left.row, right.row]),
                    np.concatenate([left.col, right.col + left.shape[1]]),
                ),
            ),
            shape=(left.shape[0], left.shape[1] + right.shape[1]),
        )
        self._cached_fingerprint = None

    put_in_place(
        Features, "_combine_sparse_features", _combine_sparse_features, original
    )


def install(_app: Sanic) -> None:
    """Apply the patch."""
    stack_sparse_features_directly()
