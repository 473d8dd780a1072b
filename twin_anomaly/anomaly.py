"""Anomaly detection on named multivariate series: fit on normal data, calibrate, detect.

Scores per frame (each divided by its calibrated threshold, so 1 is the alarm level):

* per sensor ``<channel>/residual``: robust z-score (median/MAD) of the residual of a local
  linear prediction — steps, spikes and sudden offsets;
* per sensor ``<channel>/level``: robust z-score of the value — slow drifts out of range;
* per sensor ``<channel>/flat`` and ``<channel>/missing``: runs of repeated values (a stuck
  sensor) and of missing values (a dropout), relative to the longest run seen in normal data;
* per gyro axis ``<channel>/kinematic`` (models fitted with the arm's kinematics): robust
  z-score of the gyro minus the angular rate the joint states imply — an IMU bias jump while
  the arm moves;
* multivariate ``multivariate/iforest`` (IsolationForest, only when asked for: see
  ``settings.DEFAULT_METHODS``), ``multivariate/autoencoder`` (dense,
  reconstruction error of each frame) and ``multivariate/convolutional`` (1-D convolutional
  autoencoder, reconstruction error of the window of ``conv_window`` frames ending at each frame)
  on robustly standardized values; the autoencoders' events name the worst-reconstructed channel.

The last ``holdout`` of each of up to eight blocks in time of every contiguous stretch of normal
data is kept out of fitting:
the statistics and models never see it. Each threshold is the larger of the (1 − ``target_far``)
quantiles of its score on those rows and on the fitted ones, times a margin (the isolation forest's
bounded score: the quantile alone), so it holds the false-alarm rate on normal data the models have
not seen as well as on states only the fitted rows cover. An alarm rises after
``debounce`` frames above 1 and clears after ``clear`` frames below ``clear_ratio``, so a single
spike raises nothing and a burst raises one event.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.ensemble import IsolationForest

from twin_anomaly.autoencoder import Autoencoder
from twin_anomaly.convolutional import ConvAutoencoder, WindowStream, windows_of
from twin_anomaly.features import FeatureStream, run_lengths, stretches
from twin_anomaly.forest import CompiledForest
from twin_anomaly.kinematic import GyroResidual
from twin_anomaly.settings import METHODS, DetectorSettings
from twin_core.channels import Series
from twin_core.kinematics import ArmKinematics
from twin_core.levels import Level
from twin_core.signals import canonical

if TYPE_CHECKING:
    from tqdm import tqdm

MAD_TO_SIGMA = 1.4826
DEFAULT_SETTINGS = DetectorSettings()
PER_SENSOR = ('residual', 'level', 'flat', 'missing')
MULTIVARIATE = 'multivariate'
ZSCORE_CLIP = 20.0  # standardized inputs of the multivariate models are clipped to ±this
BLOCK = 4096  # frames an OnlineDetector scores at once
RECONSTRUCTION = ('autoencoder', 'convolutional')  # the scores that name a worst channel
HOLDOUT_BLOCKS = 8  # blocks per normal stretch whose ends are held out for calibration
BLOCK_FRAMES = 10  # a block holds at least this many times the frames of the windows


@dataclass(frozen=True)
class AnomalyEvent:
    """An alarm rising (``active``) or clearing on one score."""

    stamp: float
    sensor: str
    method: str
    score: float
    threshold: float
    severity: Level  # OK when clearing, else WARN or ERROR
    description: str
    active: bool


@dataclass
class AnomalyModel:
    """Statistics, multivariate models and thresholds fitted on normal data."""

    names: tuple[str, ...]
    settings: DetectorSettings
    center: np.ndarray
    scale: np.ndarray
    residual_center: np.ndarray
    residual_scale: np.ndarray
    low: np.ndarray  # per-channel range of the normal data (fixed-threshold baseline)
    high: np.ndarray
    thresholds: np.ndarray = field(default_factory=lambda: np.empty(0))
    kinematic: GyroResidual | None = None
    kinematic_center: np.ndarray = field(default_factory=lambda: np.empty(0))
    kinematic_scale: np.ndarray = field(default_factory=lambda: np.empty(0))
    iforest: CompiledForest | None = None
    autoencoder: Autoencoder | None = None
    convolutional: ConvAutoencoder | None = None

    @property
    def score_names(self) -> list[str]:
        names = []
        if 'robust' in self.settings.methods:
            names = [f'{c}/{kind}' for kind in PER_SENSOR for c in self.names]
            names += [f'{c}/kinematic' for c in self.kinematic.channels] if self.kinematic else []
        return names + [f'{MULTIVARIATE}/{m}' for m in METHODS[1:] if m in self.settings.methods]

    @classmethod
    def fit(cls, normal: Series, settings: DetectorSettings = DEFAULT_SETTINGS,
            kinematics: ArmKinematics | None = None, progress: tqdm | None = None) -> AnomalyModel:
        """Fit the statistics and models on ``normal`` but the last ``settings.holdout`` of each
        block of :func:`held_out`, and calibrate the thresholds on those held-out rows;
        ``kinematics`` (the arm's) adds the gyro's kinematic residual, ``progress`` follows the
        autoencoders' epochs.
        """
        unknown = set(settings.methods) - set(METHODS)
        if unknown or not settings.methods:
            raise ValueError(f'methods must be among {METHODS}, got {settings.methods}')
        if not 0.0 <= settings.holdout < 1.0:
            raise ValueError(f'holdout must be in [0, 1), got {settings.holdout}')
        parts = held_out(normal.time, settings)
        fitted = [(start, end - held) for start, end, held in parts if end - held > start]
        train = np.vstack([normal.values[start:end] for start, end in fitted])
        center = np.nanmedian(train, axis=0)
        scale = _robust_scale(train - center)
        residual = np.vstack([FeatureStream(len(normal.names), settings.window, settings.gap)
                              .update(normal.values[start:end]).residual for start, end in fitted])
        residual_center = np.nanmedian(residual, axis=0)
        model = cls(normal.names, settings, center, scale, residual_center,
                    _robust_scale(residual - residual_center), np.nanmin(normal.values, axis=0),
                    np.nanmax(normal.values, axis=0))
        if kinematics is not None:
            model.kinematic = GyroResidual(kinematics, normal.names)
            kinematic = model.kinematic(train)
            model.kinematic_center = np.nanmedian(kinematic, axis=0)
            model.kinematic_scale = _robust_scale(kinematic - model.kinematic_center)
        rng = np.random.default_rng(settings.seed)
        rows = np.sort(rng.choice(len(train), min(len(train), settings.max_fit_rows), replace=False))
        standardized = model.standardize(train[rows])
        if 'iforest' in settings.methods:
            model.iforest = CompiledForest.from_sklearn(IsolationForest(
                n_estimators=settings.iforest_trees, max_samples=settings.iforest_samples,
                random_state=settings.seed).fit(standardized), standardized)
        if 'autoencoder' in settings.methods:
            model.autoencoder = Autoencoder(len(normal.names), seed=settings.seed)
            model.autoencoder.fit(standardized, epochs=settings.autoencoder_epochs, seed=settings.seed,
                                  progress=progress)
        if 'convolutional' in settings.methods:
            model.convolutional = ConvAutoencoder(len(normal.names), settings.conv_window, seed=settings.seed)
            windows = [windows_of(model.standardize(normal.values[start:end]), settings.conv_window)
                       for start, end in fitted if end - start >= settings.conv_window]
            if not windows:
                raise ValueError(f'convolutional autoencoder: no normal stretch holds {settings.conv_window} frames')
            count = sum(len(w) for w in windows)
            chosen = np.sort(rng.choice(count, min(count, settings.conv_fit_windows), replace=False))
            model.convolutional.fit(np.concatenate(windows)[chosen] if count > len(chosen) else np.concatenate(windows),
                                    epochs=settings.autoencoder_epochs, seed=settings.seed, progress=progress)
        held = np.zeros(len(normal.time), dtype=bool)
        for _, end, count in parts:
            held[end - count:end] = True
        model.calibrate(normal, held if held.any() else None)
        return model

    def calibrate(self, normal: Series, held: np.ndarray | None = None) -> None:
        """Thresholds from normal data, each contiguous stretch scored from its start: per score the
        larger of its quantiles on the ``held`` rows (which the models never saw: the rate on
        unseen data) and on the others (states the held-out rows happen not to cover, such as a
        warm-up); without ``held``, the quantile on all rows. Flat/missing runs have a floor of
        ``min_run``.
        """
        raw = np.vstack([self.raw_scores(FeatureStream(len(self.names), self.settings.window, self.settings.gap),
                                         normal.values[start:end])[0]
                         for start, end in stretches(normal.time, self.settings.gap_steps)])
        level = 1.0 - self.settings.target_far
        quantile = np.nanquantile(raw, level, axis=0)
        if held is not None:
            quantile = np.fmax(np.nanquantile(raw[held], level, axis=0), np.nanquantile(raw[~held], level, axis=0))
        thresholds = np.maximum(self.settings.margin * quantile, 1e-9)
        for kind in ('flat', 'missing'):
            columns = [j for j, name in enumerate(self.score_names) if name.endswith(f'/{kind}')]
            thresholds[columns] = np.maximum(self.settings.margin * raw[:, columns].max(axis=0),
                                             self.settings.min_run)
        if self.iforest is not None:
            # Its score is bounded by 1 and saturates (about 0.73 with 256-sample trees) for any
            # point beyond the normal data, just above the normal quantiles: no margin on it.
            column = self.score_names.index(f'{MULTIVARIATE}/iforest')
            thresholds[column] = max(float(quantile[column]), 1e-9)
        self.thresholds = thresholds

    def standardize(self, values: np.ndarray) -> np.ndarray:
        """Robust z-scores of the values, NaN as 0, clipped (the multivariate models' input)."""
        z = np.subtract(values, self.center)
        np.divide(z, self.scale, out=z)
        np.clip(z, -ZSCORE_CLIP, ZSCORE_CLIP, out=z)
        np.copyto(z, 0.0, where=np.isnan(z))
        return z

    def raw_scores(self, stream: FeatureStream, values: np.ndarray,
                   windows: WindowStream | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Raw scores (n, scores) and the index of each frame's worst-reconstructed channel (n, 2:
        dense and convolutional autoencoder); ``windows`` carries the convolutional autoencoder's
        window across calls (default: a stream starting with ``values``).
        """
        values = np.asarray(values, dtype=float)
        k = len(self.names)
        robust = 'robust' in self.settings.methods
        column = (4 * k + (len(self.kinematic.channels) if self.kinematic else 0)) * robust
        models = (self.iforest, self.autoencoder, self.convolutional)
        raw = np.empty((len(values), column + sum(m is not None for m in models)))
        worst = np.zeros((len(values), len(RECONSTRUCTION)), dtype=np.int64)
        if robust:
            features = stream.update(values)
            raw[:, :k] = _deviation(features.residual, self.residual_center, self.residual_scale)
            raw[:, k:2 * k] = _deviation(values, self.center, self.scale)
            raw[:, 2 * k:3 * k] = features.flat
            raw[:, 3 * k:4 * k] = features.missing
            if self.kinematic is not None:
                raw[:, 4 * k:column] = _deviation(self.kinematic(values), self.kinematic_center, self.kinematic_scale)
        if any(m is not None for m in models):
            standardized = self.standardize(values)
            if self.iforest is not None:
                raw[:, column] = -self.iforest.score_samples(standardized)
                column += 1
            if self.autoencoder is not None:
                errors = self.autoencoder.errors(standardized)
                worst[:, 0] = errors.argmax(axis=1)
                raw[:, column] = errors.mean(axis=1, dtype=float)
                column += 1
            if self.convolutional is not None:
                errors = (windows or WindowStream(self.convolutional, k)).update(standardized)
                worst[:, 1] = errors.argmax(axis=1)
                raw[:, column] = errors.mean(axis=1, dtype=float)
        return raw, worst

    def save(self, directory: str | Path) -> None:
        """``model.json`` (statistics, kinematics, thresholds), ``iforest.npz``, ``autoencoder.pt`` and
        ``convolutional.pt``.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        arrays = {k: getattr(self, k).tolist() for k in
                  ('center', 'scale', 'residual_center', 'residual_scale', 'low', 'high', 'thresholds',
                   'kinematic_center', 'kinematic_scale')}
        kinematic = self.kinematic.to_dict() if self.kinematic else None
        (directory / 'model.json').write_text(json.dumps(
            {'names': self.names, 'settings': asdict(self.settings), 'kinematic': kinematic, **arrays}, indent=1))
        if self.iforest is not None:
            self.iforest.save(directory / 'iforest.npz')
        if self.autoencoder is not None:
            self.autoencoder.save(directory / 'autoencoder.pt')
        if self.convolutional is not None:
            self.convolutional.save(directory / 'convolutional.pt')

    @classmethod
    def load(cls, directory: str | Path) -> AnomalyModel:
        """A model written by :meth:`save` (channel names in the older topic-based form are read as
        their signals).
        """
        directory = Path(directory)
        document = json.loads((directory / 'model.json').read_text())
        fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                                  for k, v in document.pop('settings').items()}
        settings = DetectorSettings(**fields)
        names = tuple(canonical(name) for name in document.pop('names'))
        kinematic = document.pop('kinematic', None)
        arrays: dict[str, Any] = {k: np.array(v) for k, v in document.items()}  # center, scale, ...
        model = cls(names, settings, **arrays,
                    kinematic=GyroResidual.from_dict(kinematic, names) if kinematic else None)
        if 'iforest' in settings.methods:
            model.iforest = CompiledForest.load(directory / 'iforest.npz')
        if 'autoencoder' in settings.methods:
            model.autoencoder = Autoencoder.load(directory / 'autoencoder.pt')
        if 'convolutional' in settings.methods:
            model.convolutional = ConvAutoencoder.load(directory / 'convolutional.pt')
        return model


class OnlineDetector:
    """Scores blocks of frames (one frame, a micro-batch or a whole series) and emits events."""

    def __init__(self, model: AnomalyModel) -> None:
        self.model = model
        settings = model.settings
        self._stream = FeatureStream(len(model.names), settings.window, settings.gap)
        self._windows = WindowStream(model.convolutional, len(model.names)) if model.convolutional else None
        count = len(model.score_names)
        self._above = np.zeros(count)
        self._below = np.zeros(count)
        self.active = np.zeros(count, dtype=bool)
        self._sensor, self._method = zip(*(name.rsplit('/', 1) for name in model.score_names))

    def process(self, time: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, list[AnomalyEvent]]:
        """Alarm state per frame and score (n, scores) and the events raised or cleared.

        Long inputs are scored in blocks of ``BLOCK`` frames (the same results: every stage
        carries its state across blocks) so that the intermediate arrays stay in cache.
        """
        values = np.atleast_2d(np.asarray(values, dtype=float))
        if values.shape[1] != len(self.model.names) or len(time) != len(values):
            raise ValueError(f'anomaly detector: expected {len(time)} frames x {len(self.model.names)} channels, '
                             f'got values of shape {values.shape}')
        alarms = np.empty((len(values), len(self.active)), dtype=bool)
        events: list[AnomalyEvent] = []
        for start in range(0, len(values), BLOCK):
            block = slice(start, start + BLOCK)
            alarms[block] = self._process_block(time[block], values[block], events)
        return alarms, events

    def _process_block(self, time: np.ndarray, values: np.ndarray, events: list[AnomalyEvent]) -> np.ndarray:
        """Alarm states of one block; appends its events to ``events``."""
        raw, worst = self.model.raw_scores(self._stream, values, self._windows)
        alarms, hot = self._hysteresis(raw / self.model.thresholds)
        hot = np.flatnonzero(hot)  # only these scores can change state
        changed = alarms[:, hot] != np.vstack((self.active[hot], alarms[:-1, hot]))
        events += [self._event(float(time[i]), hot[h], bool(alarms[i, hot[h]]), raw[i, hot[h]], worst[i])
                   for i, h in zip(*np.nonzero(changed))]
        self.active = alarms[-1].copy()
        return alarms

    def _hysteresis(self, ratio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Debounced alarm states and which scores are hot (above threshold in the block or in
        alarm); the others (nearly all, nearly always) stay off and only update their
        below-threshold run.
        """
        settings = self.model.settings
        alarms = np.zeros(ratio.shape, dtype=bool)
        below = ratio < settings.clear_ratio
        hot = (np.fmax.reduce(ratio, axis=0) > 1.0) | self.active
        cold = ~hot
        trailing = np.argmin(below[::-1, cold], axis=0)
        all_below = below[:, cold].all(axis=0)
        self._below[cold] = np.where(all_below, self._below[cold] + len(ratio), trailing)
        self._above[cold] = 0
        if hot.any():
            above = run_lengths(ratio[:, hot] > 1.0, self._above[hot])
            below_run = run_lengths(below[:, hot], self._below[hot])
            index = np.arange(1, len(ratio) + 1)[:, None]
            last_on = np.maximum.accumulate(np.where(above >= settings.debounce, index, 0), axis=0)
            last_off = np.maximum.accumulate(np.where(below_run >= settings.clear, index, 0), axis=0)
            alarms[:, hot] = np.where((last_on == 0) & (last_off == 0), self.active[hot], last_on > last_off)
            self._above[hot], self._below[hot] = above[-1], below_run[-1]
        return alarms, hot

    def _event(self, stamp: float, j: int, active: bool, score: float, worst: np.ndarray) -> AnomalyEvent:
        threshold = float(self.model.thresholds[j])
        sensor, method = self._sensor[j], self._method[j]
        if not active:
            return AnomalyEvent(stamp, sensor, method, score, threshold, Level.OK, f'{method} back to normal', False)
        severity = Level.ERROR if method == 'missing' or score >= 2.0 * threshold else Level.WARN
        detail = (f'; worst channel {self.model.names[worst[RECONSTRUCTION.index(method)]]}'
                  if method in RECONSTRUCTION else '')
        description = f'{method} score {score:.3g} above {threshold:.3g}{detail}'
        return AnomalyEvent(stamp, sensor, method, score, threshold, severity, description, True)


def held_out(time: np.ndarray, settings: DetectorSettings) -> list[tuple[int, int, int]]:
    """Blocks ``[start, end)`` of ``time`` and how many of each one's last rows are held out for
    calibration (``settings.holdout`` of it). Each contiguous stretch is cut into up to
    ``HOLDOUT_BLOCKS`` blocks in time, so that the held-out rows span it (a warm-up at its start as
    well as the steady state at its end); a stretch too short to fit on holds out nothing.
    """
    parts = []
    shortest = BLOCK_FRAMES * (settings.window + settings.gap + settings.conv_window)
    for start, end in stretches(time, settings.gap_steps):
        count = int(np.clip((end - start) // shortest, 1, HOLDOUT_BLOCKS))
        edges = np.linspace(start, end, count + 1).round().astype(int)
        for first, last in zip(edges[:-1], edges[1:]):
            held = int(round(settings.holdout * (last - first)))
            parts.append((int(first), int(last), held if last - first - held > settings.window + settings.gap else 0))
    return parts


def range_alarms(model: AnomalyModel, values: np.ndarray) -> np.ndarray:
    """The fixed-threshold baseline: any channel outside its normal [min, max], per frame."""
    with np.errstate(invalid='ignore'):
        return np.asarray(((values < model.low) | (values > model.high)).any(axis=1))


def _deviation(values: np.ndarray, center: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``np.nan_to_num(|values − center| / scale)`` in one buffer."""
    z = np.subtract(values, center)
    np.abs(z, out=z)
    np.divide(z, scale, out=z)
    np.fmax(z, 0.0, out=z)  # NaN → 0
    return np.fmin(z, np.finfo(float).max, out=z)  # inf → the largest float


def _robust_scale(deviation: np.ndarray) -> np.ndarray:
    mad = MAD_TO_SIGMA * np.nanmedian(np.abs(deviation), axis=0)
    spread = np.nanstd(deviation, axis=0)
    return np.where(mad > 1e-12, mad, np.where(spread > 1e-12, spread, 1.0))
