"""Remaining useful life learned from run-to-failure fleets (supervised), with conformal intervals.

The target is the remaining life at every row of the training units, optionally capped
(piecewise linear: constant ``cap`` while a unit is young, then falling to 0 at failure; by
default the cap is chosen on the validation units among none and 0.5, 0.75, 1 × the median
training life). Sensors are z-scored per operating regime when settings columns are given (exact
regimes when the settings take at most 20 distinct values, else KMeans clusters of them).
Features of a row come from the last ``window`` rows of its unit: per sensor the last value, the
mean and the slope, the same of the change since the unit was new (its mean over its first
``window`` rows: offsets and initial wear), that change per unit of age, and the age (time
column). Candidates: gradient boosting on those features and a small 1-D CNN over the window of
the normalised sensors, their change and the age; units, never rows, are split 70/30 into fit
and validation sets and the candidate with the lower validation RMSE is kept. The kept model is
then trained on five folds of the units, each model on the other four: predictions are the
folds' mean, and the out-of-fold residuals (every unit held out once) give split-conformal
intervals per band of predicted RUL, each unit weighing the same (as if cut at a random row).
The CNN's time limit makes its result depend on the machine's speed when it is reached.

Baselines fitted alongside on all training units, the same window of the raw sensors and settings
and the uncapped target: the mean remaining life, linear regression and gradient boosting.
"""
from __future__ import annotations

import json
import time as clock
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from twin_core.progress import progress_bar
from twin_maintenance.rul import rmse

FORMAT = 'twin supervised RUL 1'  # model.json's format field
MAX_EXACT_REGIMES = 20  # more distinct settings rows than this are clustered
DEFAULT_CLUSTERS = 6
CAP_FRACTIONS = (0.5, 0.75, 1.0)  # candidate caps, fractions of the median training life
CONFORMAL_BANDS = 3  # bands of predicted RUL with intervals of their own
FIT_SHARE = 0.7  # of the training units, to fit the candidates; the rest validate them
FOLDS = 5  # of the units, for the kept model and its intervals
MODELS = ('boosting', 'cnn')
BASELINE_NAMES = {'mean': 'mean remaining life', 'linear': 'linear regression, last window',
                  'boosting': 'gradient boosting, last window'}


@dataclass(frozen=True)
class Runs:
    """Rows of unit histories, grouped by unit and in time order within a unit."""

    units: np.ndarray
    time: np.ndarray
    sensors: np.ndarray  # rows × sensors
    settings: np.ndarray  # rows × settings (no columns: one regime)

    def subset(self, rows: np.ndarray) -> Runs:
        return Runs(self.units[rows], self.time[rows], self.sensors[rows], self.settings[rows])

    def starts(self) -> np.ndarray:
        """Index of the first row of each row's unit."""
        new = np.r_[True, self.units[1:] != self.units[:-1]] if len(self.units) else np.zeros(0, bool)
        return np.maximum.accumulate(np.where(new, np.arange(len(self.units)), 0))


def last_rows(units: np.ndarray) -> np.ndarray:
    """Index of the last row of every unit."""
    return np.flatnonzero(np.r_[units[1:] != units[:-1], True]) if len(units) else np.zeros(0, int)


def window_features(runs: Runs, values: np.ndarray, window: int) -> np.ndarray:
    """Per row and column of ``values``: last value, mean and slope (per row) over the last
    ``window`` rows of the unit, then the unit's age (time column).
    """
    rows = np.arange(len(values))
    begin = np.maximum(rows - window + 1, runs.starts())
    count = (rows - begin + 1)[:, None].astype(float)

    def summed(column: np.ndarray) -> np.ndarray:
        total = np.vstack((np.zeros((1, column.shape[1])), np.cumsum(column, axis=0)))
        return total[rows + 1] - total[begin]
    j = (rows - runs.starts())[:, None].astype(float)  # row within the unit
    sum_x, sum_jx, sum_j, sum_jj = summed(values), summed(values * j), summed(j), summed(j * j)
    spread = sum_jj - sum_j ** 2 / count
    slope = np.where(spread > 0, (sum_jx - sum_j * sum_x / count) / np.where(spread > 0, spread, 1.0), 0.0)
    return np.column_stack((values, sum_x / count, slope, runs.time))


def baseline_levels(runs: Runs, values: np.ndarray, window: int) -> np.ndarray:
    """Per row, the mean of ``values`` over the first ``window`` rows of its unit up to the row:
    the unit's own level when new (its offsets and initial wear), causal.
    """
    rows, start = np.arange(len(values)), runs.starts()
    end = np.minimum(start + window, rows + 1)
    total = np.vstack((np.zeros((1, values.shape[1])), np.cumsum(values, axis=0)))
    return (total[end] - total[start]) / (end - start)[:, None]


def history_features(runs: Runs, values: np.ndarray, window: int) -> np.ndarray:
    """``window_features`` of ``values`` and of their change since the unit was new (the
    ``baseline_levels``), then that change per unit of age.
    """
    change = values - baseline_levels(runs, values, window)
    recent = window_features(runs, change, window)[:, values.shape[1]:2 * values.shape[1]]
    return np.column_stack((window_features(runs, values, window), recent,
                            recent / np.maximum(runs.time - runs.time[runs.starts()], 1.0)[:, None]))


@dataclass
class Regimes:
    """Operating regimes from the settings columns and the sensors' mean and spread in each."""

    centers: np.ndarray  # regimes × settings, in units of ``scale``
    scale: np.ndarray  # per settings column
    mean: np.ndarray  # regimes × sensors
    std: np.ndarray

    @classmethod
    def fit(cls, settings: np.ndarray, sensors: np.ndarray, clusters: int | None = None, seed: int = 0) -> Regimes:
        """Exact regimes when the settings rows take at most ``MAX_EXACT_REGIMES`` distinct values
        and ``clusters`` is not given, else ``clusters`` (default ``DEFAULT_CLUSTERS``) KMeans centres.
        """
        scale = np.std(settings, axis=0) if settings.shape[1] else np.ones(0)
        scale = np.where(scale > 1e-12, scale, 1.0)
        scaled = settings / scale
        distinct = np.unique(np.round(scaled, 6), axis=0)
        if not settings.shape[1]:
            centers = np.zeros((1, 0))
        elif clusters is None and len(distinct) <= MAX_EXACT_REGIMES:
            centers = distinct
        else:
            from sklearn.cluster import KMeans
            centers = KMeans(clusters or DEFAULT_CLUSTERS, n_init=10, random_state=seed).fit(scaled).cluster_centers_
        shape = (len(centers), sensors.shape[1])
        regimes = cls(centers, scale, np.zeros(shape), np.ones(shape))
        label = regimes.label(settings)
        for regime in range(len(centers)):
            rows = sensors[label == regime] if (label == regime).sum() >= 2 else sensors
            regimes.mean[regime] = rows.mean(axis=0)
            regimes.std[regime] = np.where(rows.std(axis=0) > 1e-12, rows.std(axis=0), 1.0)
        return regimes

    def label(self, settings: np.ndarray) -> np.ndarray:
        """Nearest regime of every settings row."""
        distance = ((settings / self.scale)[:, None, :] - self.centers[None]) ** 2
        return np.argmin(distance.sum(axis=2), axis=1) if len(settings) else np.zeros(0, int)

    def normalise(self, settings: np.ndarray, sensors: np.ndarray) -> np.ndarray:
        """Sensors z-scored by the statistics of their row's regime."""
        label = self.label(settings)
        return (sensors - self.mean[label]) / self.std[label]


@dataclass
class Trees:
    """A fitted gradient-boosting ensemble as arrays (all trees' nodes one after the other)."""

    baseline: float
    roots: np.ndarray  # node index of each tree's root
    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    left: np.ndarray  # absolute node indices
    right: np.ndarray
    leaf: np.ndarray
    value: np.ndarray

    @classmethod
    def fit(cls, features: np.ndarray, target: np.ndarray, seed: int) -> Trees:
        """Fit scikit-learn's HistGradientBoostingRegressor and read its trees read into arrays."""
        from sklearn.ensemble import HistGradientBoostingRegressor
        model = HistGradientBoostingRegressor(max_iter=200, learning_rate=0.05, min_samples_leaf=40,
                                              early_stopping=False, random_state=seed).fit(features, target)
        nodes = [predictors[0].nodes for predictors in model._predictors]
        offsets = np.cumsum([0] + [len(n) for n in nodes[:-1]])
        every = np.concatenate(nodes)
        shift = np.repeat(offsets, [len(n) for n in nodes])
        return cls(float(np.ravel(model._baseline_prediction)[0]), offsets, every['feature_idx'].astype(int),
                   every['num_threshold'].astype(float), every['missing_go_to_left'].astype(bool),
                   every['left'].astype(int) + shift, every['right'].astype(int) + shift,
                   every['is_leaf'].astype(bool), every['value'].astype(float))

    def predict(self, features: np.ndarray) -> np.ndarray:
        node = np.broadcast_to(self.roots, (len(features), len(self.roots))).copy()
        rows = np.arange(len(features))[:, None]
        while not self.leaf[node].all():
            x = features[rows, self.feature[node]]
            go_left = np.where(np.isnan(x), self.missing_left[node], x <= self.threshold[node])
            node = np.where(self.leaf[node], node, np.where(go_left, self.left[node], self.right[node]))
        return self.baseline + self.value[node].sum(axis=1)


@dataclass
class Linear:
    """Least-squares linear regression on standardised features."""

    mean: np.ndarray
    std: np.ndarray
    weights: np.ndarray  # intercept first

    @classmethod
    def fit(cls, features: np.ndarray, target: np.ndarray) -> Linear:
        mean, std = features.mean(axis=0), features.std(axis=0)
        std = np.where(std > 1e-12, std, 1.0)
        design = np.column_stack((np.ones(len(features)), (features - mean) / std))
        return cls(mean, std, np.linalg.lstsq(design, target, rcond=None)[0])

    def predict(self, features: np.ndarray) -> np.ndarray:
        return self.weights[0] + ((features - self.mean) / self.std) @ self.weights[1:]


def sequence_windows(runs: Runs, values: np.ndarray, window: int, rows: np.ndarray) -> np.ndarray:
    """Windows of rows × channels × ``window``: the last ``window`` rows of ``values`` up to each of ``rows``
    (the unit's first row repeated before its start).
    """
    steps = rows[:, None] - window + 1 + np.arange(window)
    return np.transpose(values[np.maximum(steps, runs.starts()[rows][:, None])], (0, 2, 1))


def build_network(channels: int, window: int) -> Any:
    """A small 1-D CNN: two convolutions over time, then a dense head to one output."""
    from torch import nn
    return nn.Sequential(nn.Conv1d(channels, 24, 5, padding=2), nn.ReLU(), nn.Conv1d(24, 24, 5, padding=2), nn.ReLU(),
                         nn.Flatten(), nn.Linear(24 * window, 48), nn.ReLU(), nn.Linear(48, 1))


def train_network(inputs: np.ndarray, target: np.ndarray, seed: int, epochs: int, time_limit: float) -> Any:
    """Adam on the mean squared error, batches of 256, ``epochs`` or until ``time_limit`` s."""
    import torch
    torch.manual_seed(seed)
    network = build_network(inputs.shape[1], inputs.shape[2])
    optimiser = torch.optim.Adam(network.parameters(), lr=2e-3)
    x, y = torch.as_tensor(inputs, dtype=torch.float32), torch.as_tensor(target, dtype=torch.float32)[:, None]
    generator = torch.Generator().manual_seed(seed)
    started = clock.monotonic()
    with progress_bar(epochs, 'cnn', 'epoch') as bar:
        for _ in range(epochs):
            for batch in torch.randperm(len(x), generator=generator).split(256):
                optimiser.zero_grad()
                loss = torch.nn.functional.mse_loss(network(x[batch]), y[batch])
                loss.backward()
                optimiser.step()
            bar.update(1)
            if clock.monotonic() - started > time_limit:
                break
    return network.eval()


def run_network(network: Any, inputs: np.ndarray) -> np.ndarray:
    import torch
    with torch.no_grad():
        return network(torch.as_tensor(inputs, dtype=torch.float32)).numpy()[:, 0].astype(float)


def weighted_quantile(values: np.ndarray, weights: np.ndarray, level: float) -> float:
    """The smallest value whose cumulative weight share reaches ``level``."""
    order = np.argsort(values)
    share = np.cumsum(weights[order]) / weights.sum()
    return float(values[order][min(int(np.searchsorted(share, level - 1e-12)), len(values) - 1)])


def unit_weights(units: np.ndarray) -> np.ndarray:
    """1 / rows of the unit: every unit weighs the same."""
    _, inverse, counts = np.unique(units, return_inverse=True, return_counts=True)
    return 1.0 / counts[inverse]


@dataclass
class Conformal:
    """Split-conformal intervals: signed residual (true − predicted) quantiles per predicted band."""

    edges: np.ndarray  # inner edges of the predicted-RUL bands
    low: np.ndarray  # residual quantile per band
    high: np.ndarray
    coverage: float

    @classmethod
    def fit(cls, predicted: np.ndarray, true: np.ndarray, units: np.ndarray, coverage: float = 0.8) -> Conformal:
        """Bands at quantiles of ``predicted``; in each, the residual quantiles at (1 ∓ coverage)/2
        widened for the band's number of units n (levels scaled by (n + 1)/n).
        """
        edges = np.quantile(predicted, np.arange(1, CONFORMAL_BANDS) / CONFORMAL_BANDS)
        band = np.searchsorted(edges, predicted)
        low, high = np.zeros(CONFORMAL_BANDS), np.zeros(CONFORMAL_BANDS)
        for b in range(CONFORMAL_BANDS):
            rows = band == b
            rows = rows if rows.any() else np.ones(len(band), bool)
            residual, weights = true[rows] - predicted[rows], unit_weights(units[rows])
            n = len(np.unique(units[rows]))
            upper = min(1.0, (1.0 + coverage) / 2.0 * (n + 1) / n)
            low[b] = weighted_quantile(residual, weights, 1.0 - upper)
            high[b] = weighted_quantile(residual, weights, upper)
        return cls(edges, low, high, coverage)

    def interval(self, predicted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        band = np.searchsorted(self.edges, predicted)
        return np.maximum(predicted + self.low[band], 0.0), np.maximum(predicted + self.high[band], 0.0)


def cap_text(cap: float | None) -> str:
    return 'none' if cap is None else f'{cap:g}'


@dataclass(frozen=True)
class FitOptions:
    """How ``SupervisedRul.fit`` trains."""

    window: int = 30  # rows
    cap: float | str = 'auto'  # remaining-life cap, 'none', or 'auto': chosen on the validation units
    models: tuple[str, ...] = MODELS
    coverage: float = 0.8
    clusters: int | None = None  # KMeans regimes; None: exact regimes when few
    epochs: int = 30
    time_limit: float = 90.0  # s of CNN training
    seed: int = 0


@dataclass
class Baselines:
    """Plain predictors on the last window of the raw sensors and settings, uncapped target."""

    window: int
    mean: float
    linear: Linear
    trees: Trees

    @classmethod
    def fit(cls, runs: Runs, rul: np.ndarray, window: int, seed: int) -> Baselines:
        features = window_features(runs, np.column_stack((runs.sensors, runs.settings)), window)
        return cls(window, float(rul.mean()), Linear.fit(features, rul), Trees.fit(features, rul, seed))

    def predict(self, runs: Runs, rows: np.ndarray) -> dict[str, np.ndarray]:
        features = window_features(runs, np.column_stack((runs.sensors, runs.settings)), self.window)[rows]
        return {'mean': np.full(len(rows), self.mean), 'linear': np.maximum(self.linear.predict(features), 0.0),
                'boosting': np.maximum(self.trees.predict(features), 0.0)}


@dataclass
class SupervisedRul:
    """The kept model, its regimes, cap and conformal intervals, and the baselines."""

    sensors: tuple[str, ...]
    settings: tuple[str, ...]
    options: FitOptions
    kind: str  # one of MODELS
    cap: float | None
    age_scale: float  # the CNN's age channel is time / age_scale
    regimes: Regimes
    conformal: Conformal
    baselines: Baselines
    members: list[Any] = field(default_factory=list)  # one model (Trees or a torch module) per fold
    validation: dict[str, float] = field(default_factory=dict)  # candidate -> RMSE on the validation units

    def inputs(self, runs: Runs) -> np.ndarray:
        """Regime-normalised sensors, their change since the unit was new, then the age channel."""
        values = self.regimes.normalise(runs.settings, runs.sensors)
        return np.column_stack((values, values - baseline_levels(runs, values, self.options.window),
                                runs.time / self.age_scale))

    def features(self, runs: Runs) -> np.ndarray:
        """The boosting model's features of every row."""
        return history_features(runs, self.regimes.normalise(runs.settings, runs.sensors), self.options.window)

    def prepared(self, runs: Runs, rows: np.ndarray) -> np.ndarray:
        """What the models of ``self.kind`` read at ``rows``: window features or windows of inputs."""
        if self.kind == 'cnn':
            return sequence_windows(runs, self.inputs(runs), self.options.window, rows)
        return self.features(runs)[rows]

    def train_member(self, inputs: np.ndarray, rul: np.ndarray, cap: float | None) -> Any:
        """A model of ``self.kind`` fitted to ``rul`` (capped at ``cap``) from prepared inputs."""
        target = rul if cap is None else np.minimum(rul, cap)
        if self.kind == 'cnn':
            return train_network(inputs, target / (cap or self.age_scale), self.options.seed, self.options.epochs,
                                 self.options.time_limit)
        return Trees.fit(inputs, target, self.options.seed)

    def run_member(self, member: Any, inputs: np.ndarray, cap: float | None) -> np.ndarray:
        if self.kind == 'cnn':
            return np.maximum((cap or self.age_scale) * run_network(member, inputs), 0.0)
        return np.maximum(member.predict(inputs), 0.0)

    def predict(self, runs: Runs, rows: np.ndarray) -> np.ndarray:
        """Remaining life at ``rows`` of ``runs`` (time units, at least 0): the folds' mean."""
        inputs = self.prepared(runs, rows)
        return np.mean([self.run_member(member, inputs, self.cap) for member in self.members], axis=0)

    @classmethod
    def fit(cls, runs: Runs, rul: np.ndarray, sensors: Sequence[str], settings: Sequence[str],
            options: FitOptions = FitOptions(), log: Any = print) -> SupervisedRul:
        """Choose the cap and the model on validation units, then train it on ``FOLDS`` folds of
        the units, each model on the others; the out-of-fold residuals (every unit held out once)
        calibrate the intervals. ``log`` gets one line per candidate.
        """
        names = np.unique(runs.units)
        if len(names) < FOLDS:
            raise ValueError(f'{len(names)} training units; at least {FOLDS} are needed (one per fold)')
        order = np.random.default_rng(options.seed).permutation(names)
        fit_units = np.isin(runs.units, order[:max(1, round(FIT_SHARE * len(names)))])
        fit_rows, validation_rows = np.flatnonzero(fit_units), np.flatnonzero(~fit_units)
        lives = rul[np.r_[0, np.flatnonzero(runs.units[1:] != runs.units[:-1]) + 1]]  # at each unit's first row
        life = float(np.median(lives))
        caps: list[float | None] = ([None, *(round(f * life) for f in CAP_FRACTIONS)] if options.cap == 'auto'
                                    else [None] if options.cap == 'none' else [float(options.cap)])
        model = cls(tuple(sensors), tuple(settings), options, 'boosting', None, life,
                    Regimes.fit(runs.settings, runs.sensors, options.clusters, options.seed),
                    Conformal(np.zeros(0), np.zeros(1), np.zeros(1), options.coverage),
                    Baselines.fit(runs, rul, options.window, options.seed))
        weights = unit_weights(runs.units[validation_rows])
        scores: dict[tuple[str, float | None], float] = {}
        every = np.arange(len(rul))
        for kind in MODELS:
            if kind not in options.models and not (kind == 'boosting' and len(caps) > 1):
                continue  # boosting chooses the cap for the CNN too
            model.kind = kind
            inputs = model.prepared(runs, every)
            for cap in caps if kind == 'boosting' else [min(scores, key=scores.__getitem__)[1] if scores else caps[0]]:
                member = model.train_member(inputs[fit_rows], rul[fit_rows], cap)
                scores[kind, cap] = rmse(model.run_member(member, inputs[validation_rows], cap), rul[validation_rows],
                                         weights)
                name = f'{kind}, cap {cap_text(cap)}'
                model.validation[name] = scores[kind, cap]
                log(f'validation RMSE {scores[kind, cap]:7.2f}  {name}')
        model.kind, model.cap = min((key for key in scores if key[0] in options.models), key=scores.__getitem__)
        inputs = model.prepared(runs, every)
        fold = np.argsort(order)[np.searchsorted(names, runs.units)] % FOLDS  # by each unit's place in ``order``
        held_out = np.zeros(len(rul))
        for k in range(FOLDS):
            member = model.train_member(inputs[fold != k], rul[fold != k], model.cap)
            held_out[fold == k] = model.run_member(member, inputs[fold == k], model.cap)
            model.members.append(member)
        model.conformal = Conformal.fit(held_out, rul, runs.units, options.coverage)
        log(f'kept {model.kind}, cap {cap_text(model.cap)}: out-of-fold RMSE '
            f'{rmse(held_out, rul, unit_weights(runs.units)):.2f}')
        return model

    def save(self, directory: Path) -> None:
        """``model.json`` (settings, regimes, intervals, linear baseline), ``trees.npz`` (the
        boosting ensembles) and, for the CNN, ``cnn.pt`` (its torch state) in ``directory``.
        """
        directory.mkdir(parents=True, exist_ok=True)
        document = {
            'format': FORMAT, 'sensors': self.sensors, 'settings': self.settings, 'options': asdict(self.options),
            'kind': self.kind, 'members': len(self.members), 'cap': self.cap, 'age_scale': self.age_scale,
            'validation': self.validation,
            'regimes': {k: v.tolist() for k, v in asdict(self.regimes).items()},
            'conformal': {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in asdict(self.conformal).items()},
            'baselines': {'window': self.baselines.window, 'mean': self.baselines.mean,
                          'linear': {k: v.tolist() for k, v in asdict(self.baselines.linear).items()}}}
        (directory / 'model.json').write_text(json.dumps(document, indent=1))
        ensembles = {'baseline': self.baselines.trees,
                     **{f'model{k}': m for k, m in enumerate(self.members) if isinstance(m, Trees)}}
        arrays: dict[str, Any] = {f'{name}.{k}': np.asarray(v) for name, trees in ensembles.items()
                                  for k, v in asdict(trees).items()}
        np.savez(directory / 'trees.npz', **arrays)
        if self.kind == 'cnn':
            import torch
            for k, member in enumerate(self.members):
                torch.save(member.state_dict(), directory / f'cnn{k}.pt')

    @classmethod
    def load(cls, directory: Path) -> SupervisedRul:
        path = directory / 'model.json'
        document = json.loads(path.read_text())
        if not isinstance(document, dict) or document.get('format') != FORMAT:
            raise ValueError(f'{path}: not a supervised RUL model of this version; retrain it with '
                             '`twin_rul train --method supervised`')
        with np.load(directory / 'trees.npz') as arrays:
            ensembles = {name: Trees(**{k: arrays[f'{name}.{k}'] for k in Trees.__dataclass_fields__})
                         for name in {key.split('.')[0] for key in arrays.files}}
        for trees in ensembles.values():
            trees.baseline = float(trees.baseline)
        options = FitOptions(**{**document['options'], 'models': tuple(document['options']['models'])})
        linear = Linear(**{k: np.array(v, float) for k, v in document['baselines']['linear'].items()})
        conformal = document['conformal']
        model = cls(tuple(document['sensors']), tuple(document['settings']), options, document['kind'],
                    document['cap'], document['age_scale'],
                    Regimes(**{k: np.array(v, float) for k, v in document['regimes'].items()}),
                    Conformal(np.array(conformal['edges'], float), np.array(conformal['low'], float),
                              np.array(conformal['high'], float), conformal['coverage']),
                    Baselines(document['baselines']['window'], document['baselines']['mean'], linear,
                              ensembles['baseline']),
                    validation=document['validation'])
        for k in range(document['members']):
            if model.kind == 'cnn':
                import torch
                network = build_network(2 * model.regimes.mean.shape[1] + 1, options.window)
                network.load_state_dict(torch.load(directory / f'cnn{k}.pt', weights_only=True))
                model.members.append(network.eval())
            else:
                model.members.append(ensembles[f'model{k}'])
        return model
