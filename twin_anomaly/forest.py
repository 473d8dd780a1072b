"""IsolationForest scoring in numpy: every tree walked at once, level by level.

scikit-learn's ``score_samples`` costs milliseconds per call whatever the row count (one job
per tree); here a call costs a few array operations per tree level, so single frames and
micro-batches are cheap and the model saves as plain arrays. Scores equal scikit-learn's.

For scoring, each tree is unrolled into a complete binary tree of ``depth`` levels (a leaf above
the last level repeats itself below it): a row then descends all trees together with one gather
of split feature and threshold per level and the child slot computed, not looked up.

Compiling reads the fitted trees' arrays (``tree_.children_left`` and the like, laid out as in the
scikit-learn version pinned in requirements.txt), so it checks its scores against scikit-learn's
public ``score_samples`` on the training rows and refuses a forest whose arrays mean otherwise.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import sklearn
from sklearn.ensemble import IsolationForest

EULER_GAMMA = 0.5772156649015329
CHECK_ROWS = 2000  # training rows the compiled scores are checked on
CHECK_TOLERANCE = 1e-12


def average_path_length(n: np.ndarray) -> np.ndarray:
    """Mean path length of an unsuccessful search in a binary search tree of ``n`` points."""
    n = np.asarray(n, dtype=float)
    safe = np.maximum(n, 2.0)
    length = 2.0 * (np.log(safe - 1.0) + EULER_GAMMA) - 2.0 * (safe - 1.0) / safe
    return np.where(n <= 1, 0.0, np.where(n == 2, 1.0, length))


def _incompatible(detail: str) -> str:
    return (f'scikit-learn {sklearn.__version__} lays out fitted trees unlike the version pinned in requirements.txt, '
            f'which CompiledForest reads: {detail}')


class CompiledForest:
    """Trees as padded node arrays (the saved form): feature (−1 at leaves), threshold, children,
    leaf path term; scored through their complete-tree unrolling.
    """

    def __init__(self, feature: np.ndarray, threshold: np.ndarray, left: np.ndarray, right: np.ndarray,
                 leaf_term: np.ndarray, depth: int, normaliser: float) -> None:
        self.feature, self.threshold, self.left, self.right = feature, threshold, left, right
        self.leaf_term, self.depth, self.normaliser = leaf_term, depth, normaliser
        self._levels, self._path = self._unroll()

    def _unroll(self) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray]:
        """Per level, the split feature and threshold of each tree's ``2**level`` slots (tree-major,
        flat), and the path length (splits + leaf term) at each final slot. Slot ``s`` of a level
        has children ``2s`` (value above the threshold) and ``2s + 1`` (at or below it).
        """
        trees = np.arange(len(self.feature))[:, None]
        node = np.zeros((len(trees), 1), dtype=np.int64)
        splits = np.zeros(node.shape)
        levels = []
        for _ in range(self.depth):
            split = self.feature[trees, node]
            leaf = split < 0
            levels.append((np.maximum(split, 0).ravel(), self.threshold[trees, node].ravel()))
            children = (np.where(leaf, node, self.right[trees, node]), np.where(leaf, node, self.left[trees, node]))
            node = np.stack(children, axis=2).reshape(len(trees), -1)
            splits = np.repeat(splits + ~leaf, 2, axis=1)
        return levels, (splits + self.leaf_term[trees, node]).ravel()

    @classmethod
    def from_sklearn(cls, forest: IsolationForest, rows: np.ndarray) -> CompiledForest:
        """The fitted ``forest``, checked against its ``score_samples`` on (some of) its training ``rows``."""
        try:
            compiled = cls._compile(forest)
        except AttributeError as error:
            raise RuntimeError(_incompatible(str(error))) from None
        check = np.asarray(rows[:CHECK_ROWS], dtype=np.float32).astype(float)  # the precision it was fitted at
        difference = np.abs(compiled.score_samples(check) - forest.score_samples(check)).max(initial=0.0)
        if not difference <= CHECK_TOLERANCE:
            raise RuntimeError(_incompatible(f'scores differ from IsolationForest.score_samples by {difference:.3g}'))
        return compiled

    @classmethod
    def _compile(cls, forest: IsolationForest) -> CompiledForest:
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

    def score_samples(self, rows: np.ndarray, chunk: int = 2048) -> np.ndarray:
        """scikit-learn's ``IsolationForest.score_samples`` (higher = more normal) of rows (n, features)."""
        rows = np.asarray(rows, dtype=float)
        if rows.ndim != 2:
            raise ValueError(f'isolation forest: rows must be (n, features), got shape {rows.shape}')
        trees = np.arange(len(self.feature))
        scores = np.empty(len(rows))
        for start in range(0, len(rows), chunk):
            block = np.ascontiguousarray(rows[start:start + chunk])
            values = block.ravel()
            row_start = np.arange(0, block.size, block.shape[1])[:, None]
            slot = np.tile(trees, (len(block), 1))
            for feature, threshold in self._levels:
                at_or_below = values.take(feature.take(slot) + row_start) <= threshold.take(slot)
                slot <<= 1
                slot += at_or_below
            mean_depth = self._path.take(slot).mean(axis=1)
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
