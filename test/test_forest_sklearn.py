"""The installed scikit-learn lays out fitted isolation trees as CompiledForest reads them."""
import numpy as np
import pytest
import sklearn
from packaging.requirements import Requirement
from sklearn.ensemble import IsolationForest

from harness import REPO
from twin_anomaly.forest import CompiledForest


def pinned() -> Requirement:
    """The scikit-learn requirement of requirements.txt."""
    lines = (line.split('#', 1)[0].strip() for line in (REPO / 'requirements.txt').read_text().splitlines())
    return next(r for r in map(Requirement, filter(None, lines)) if r.name == 'scikit-learn')


@pytest.fixture(scope='module')
def fitted() -> tuple[IsolationForest, np.ndarray]:
    rows = np.random.default_rng(3).normal(size=(3000, 6))
    return IsolationForest(n_estimators=20, max_samples=128, random_state=0).fit(rows), rows


def test_the_installed_scikit_learn_is_the_pinned_one():
    requirement = pinned()
    assert sklearn.__version__ in requirement.specifier, (
        f'scikit-learn {sklearn.__version__} is installed, requirements.txt pins {requirement}: CompiledForest '
        'reads the fitted trees\' arrays; check test_fitted_tree_arrays_are_laid_out_as_compiled, then move the pin')


def test_fitted_tree_arrays_are_laid_out_as_compiled(fitted):
    forest, rows = fitted
    for index, estimator in enumerate(forest.estimators_):
        tree = estimator.tree_
        count = tree.node_count
        left, right = tree.children_left[:count], tree.children_right[:count]
        internal = left >= 0
        where = f'scikit-learn {sklearn.__version__}, tree {index}'
        assert np.array_equal(right >= 0, internal), f'{where}: leaves are not marked by both children < 0'
        nodes = np.arange(count)
        assert (left[internal] > nodes[internal]).all() and (right[internal] > nodes[internal]).all(), (
            f'{where}: children are not numbered after their parent')
        features = tree.feature[:count][internal]
        assert ((features >= 0) & (features < len(forest.estimators_features_[index]))).all(), (
            f'{where}: split features are not columns of estimators_features_')
        assert tree.n_node_samples[0] == forest.max_samples_, f'{where}: the root does not hold max_samples_ rows'
        assert tree.max_depth == estimator.get_depth(), f'{where}: max_depth is not the depth of the tree'
    compiled = CompiledForest.from_sklearn(forest, rows)
    probe = np.random.default_rng(4).normal(0, 2, (2000, 6)).astype(np.float32).astype(float)
    np.testing.assert_allclose(compiled.score_samples(probe), forest.score_samples(probe), rtol=0, atol=1e-12,
                               err_msg=f'scikit-learn {sklearn.__version__}: compiled scores differ')


def test_a_forest_whose_scores_differ_is_refused(fitted, monkeypatch):
    forest, rows = fitted
    monkeypatch.setattr(forest, 'score_samples', lambda x: IsolationForest.score_samples(forest, x) + 1e-6)
    with pytest.raises(RuntimeError, match=rf'scikit-learn {sklearn.__version__} lays out .* differ .* by 1e-06'):
        CompiledForest.from_sklearn(forest, rows)
