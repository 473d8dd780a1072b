"""IsolationForest scoring in numpy: every tree walked at once, level by level.

scikit-learn's ``score_samples`` costs milliseconds per call whatever the row count (one job
per tree); here a call costs a few array operations per tree level, so single frames and
micro-batches are cheap and the model saves as plain arrays. Scores equal scikit-learn's.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.ensemble import IsolationForest

EULER_GAMMA = 0.5772156649015329


def average_path_length(n: np.ndarray) -> np.ndarray:
    """Mean path length of an unsuccessful search in a binary search tree of ``n`` points."""
    n = np.asarray(n, dtype=float)
    safe = np.maximum(n, 2.0)
    length = 2.0 * (np.log(safe - 1.0) + EULER_GAMMA) - 2.0 * (safe - 1.0) / safe
    return np.where(n <= 1, 0.0, np.where(n == 2, 1.0, length))


class CompiledForest:
    """Trees as padded node arrays: feature (−1 at leaves), threshold, children, leaf path term."""

    def __init__(self, feature: np.ndarray, threshold: np.ndarray, left: np.ndarray, right: np.ndarray,
                 leaf_term: np.ndarray, depth: int, normaliser: float) -> None:
        self.feature, self.threshold, self.left, self.right = feature, threshold, left, right
        self.leaf_term, self.depth, self.normaliser = leaf_term, depth, normaliser
        trees, size = feature.shape
        offset = (np.arange(trees) * size)[:, None]
        self._roots = offset.ravel()
        self._flat = (feature.ravel(), threshold.ravel(), (left + offset).ravel(), (right + offset).ravel(),
                      leaf_term.ravel())

    @classmethod
    def from_sklearn(cls, forest: IsolationForest) -> CompiledForest:
        trees = [estimator.tree_ for estimator in forest.estimators_]
        size = max(tree.node_count for tree in trees)
        feature = np.full((len(trees), size), -1, dtype=np.int64)
        threshold = np.zeros((len(trees), size))
        left = np.zeros((len(trees), size), dtype=np.int64)
        right = np.zeros((len(trees), size), dtype=np.int64)
        leaf_term = np.zeros((len(trees), size))
        for i, (tree, columns) in enumerate(zip(trees, forest.estimators_features_)):
            count = tree.node_count
            internal = tree.children_left[:count] >= 0
            feature[i, :count] = np.where(internal, np.asarray(columns)[np.maximum(tree.feature[:count], 0)], -1)
            threshold[i, :count] = tree.threshold[:count]
            nodes = np.arange(count)
            left[i, :count] = np.where(internal, tree.children_left[:count], nodes)
            right[i, :count] = np.where(internal, tree.children_right[:count], nodes)
            leaf_term[i, :count] = average_path_length(tree.n_node_samples[:count])
        depth = max(tree.max_depth for tree in trees)
        return cls(feature, threshold, left, right, leaf_term, depth,
                   float(average_path_length(forest.max_samples_)))

    def score_samples(self, rows: np.ndarray, chunk: int = 4096) -> np.ndarray:
        """scikit-learn's ``IsolationForest.score_samples`` (higher = more normal)."""
        rows = np.asarray(rows, dtype=float)
        feature, threshold, left, right, leaf_term = self._flat
        scores = np.empty(len(rows))
        for start in range(0, len(rows), chunk):
            block = rows[start:start + chunk]
            node = np.broadcast_to(self._roots, (len(block), len(self._roots)))
            path = np.zeros(node.shape)
            for _ in range(self.depth):
                split = feature.take(node)
                path += split >= 0
                value = np.take_along_axis(block, np.maximum(split, 0), axis=1)
                node = np.where(value <= threshold.take(node), left.take(node), right.take(node))
            mean_depth = (path + leaf_term.take(node)).mean(axis=1)
            scores[start:start + chunk] = -(2.0 ** (-mean_depth / self.normaliser))
        return scores

    def save(self, path: Path) -> None:
        np.savez_compressed(path, feature=self.feature, threshold=self.threshold, left=self.left,
                            right=self.right, leaf_term=self.leaf_term, depth=self.depth,
                            normaliser=self.normaliser)

    @classmethod
    def load(cls, path: Path) -> CompiledForest:
        with np.load(path) as saved:
            return cls(saved['feature'], saved['threshold'], saved['left'], saved['right'],
                       saved['leaf_term'], int(saved['depth']), float(saved['normaliser']))
