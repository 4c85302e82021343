"""Named sliders: move one pose attribute of a latent point and hold the others.

The anchors (`fit_global_directions`) are one direction per attribute for the whole latent space:
GANSpace (Harkonen et al., NeurIPS 2020: the principal direction of the latents that follows the
attribute best) and InterFaceGAN (Shen et al., CVPR 2020: a linear model of the attribute on the
latents, scikit-learn ridge; its normal moves the attribute, and the *conditional* direction,
the normal projected off the other attributes' normals, W^+ e_k, moves it alone in the linear
model). On this latent space a global line cannot hold the others: a pose in camera axes couples
orientation and articulation (the same finger curl is a different joint motion in every
orientation), so a linear model explains only 33-76 % of each attribute's variance (R^2 on
training poses of the release model) and the conditional direction of "index curl" hardly curls
the index (benchmarks/named_sliders.py).

The app's knobs (`edit_attribute`) therefore work at the current point:
- articulation (curls, spread, opposition): InterFaceGAN's conditional direction taken *locally*,
  the Jacobian of every measure (the attributes, and the hand's position, which must stay too)
  through the pose decoder by finite differences in whitened latent units; a damped Gauss-Newton
  step toward "this attribute at the slider's value, every other measure where it was" is the
  least-norm latent move (in standard deviations of the training latents, so it stays where the
  generator was trained), and a long move is split into short steps, each re-linearised;
- orientation (yaw, pitch, roll): the decoded pose turned rigidly about the palm by exactly the
  asked angle and encoded again by the pose VAE (a rotation changes no articulation, and the
  latent holds the turned hand: local steps drift across the fist's curls over a half turn),
  then polished by the same Gauss-Newton steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from crossingnets.explorer.attributes import ATTRIBUTES, hand_attributes
from crossingnets.explorer.axes import LatentAxes

if TYPE_CHECKING:  # the model is passed in; importing this module loads no torch model code
    from crossingnets.inference import HandPoseEstimator

ORIENTATION = ("yaw", "pitch", "roll")  # edited by turning the pose (`attributes.orientation_deg`)
HELD = ("hand x", "hand y", "hand z")  # the root joint about the crop centre, mm: held, not a slider
MEASURES = tuple(a.name for a in ATTRIBUTES) + HELD
_CIRCULAR = np.array([a.circular for a in ATTRIBUTES] + [False] * len(HELD))
# Differences of every angle wrap: a curl is cut at -90/270 and yaw at +-180, and a small move
# across a cut is a small change, not 360 degrees.
_ANGLE = np.array([a.unit == "deg" for a in ATTRIBUTES] + [False] * len(HELD))


def measure(estimator: HandPoseEstimator, latents: np.ndarray) -> np.ndarray:
    """(B, L) latents -> (B, M) MEASURES of their decoded poses (attributes, then root mm)."""
    joints = estimator.decode_latent(np.atleast_2d(np.asarray(latents, np.float64)))
    convention = estimator.convention
    return np.column_stack([hand_attributes(joints, convention), joints[:, convention.root]])


def difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a - b of (..., M) measures, angles wrapped to [-180, 180)."""
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    return np.where(_ANGLE, (d + 180.0) % 360.0 - 180.0, d)


@dataclass(frozen=True)
class EditConfig:
    tolerance: float = 10.0  # deg or mm: the miss the solver weighs as one unit, in every measure
    step: float = 20.0  # deg or mm: the longest move of the edited attribute between re-linearisations
    iterations: int = 2  # Gauss-Newton iterations per step (one more ends the edit)
    max_iterations: int = 12  # bound on one edit's work (a slider move stays fast)
    damping: float = 1e-2  # Levenberg-Marquardt damping, in tolerance units squared
    fd_sigma: float = 0.01  # finite-difference step, in std of the latent's principal directions
    trust_sigma: float = 0.7  # longest latent move per iteration, in those std


@dataclass(frozen=True)
class Edit:
    latent: np.ndarray  # (L,) the moved point
    measured: np.ndarray  # (M,) its MEASURES
    target: np.ndarray  # (M,) what was asked: the edited attribute at its value, the rest held


def _jacobian(
    estimator: HandPoseEstimator, axes: LatentAxes, z: np.ndarray, fd_sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    """Measures at z (M,) and their Jacobian (M, K) in whitened units, by one batch of K+1 decodes."""
    basis = axes.sigma[:, None] * axes.components  # (K, L): one std along each direction
    m = measure(estimator, np.vstack([z, z + fd_sigma * basis]))
    return m[0], difference(m[1:], m[0]).T / fd_sigma


def _gauss_newton(
    estimator: HandPoseEstimator, axes: LatentAxes, z: np.ndarray, target: np.ndarray, cfg: EditConfig
) -> np.ndarray:
    """One damped Gauss-Newton step of z toward `target` (M,): least-norm in whitened units."""
    now, jac = _jacobian(estimator, axes, z, cfg.fd_sigma)
    r = difference(target, now) / cfg.tolerance
    j = jac / cfg.tolerance
    du = j.T @ np.linalg.solve(j @ j.T + cfg.damping * np.eye(len(r)), r)
    norm = float(np.linalg.norm(du))
    if norm > cfg.trust_sigma:
        du *= cfg.trust_sigma / norm
    return z + (du * axes.sigma) @ axes.components


def turn(yaw_pitch_roll_deg: np.ndarray, name: str, delta_deg: float) -> np.ndarray:
    """(3, 3) camera-frame rotation that changes orientation angle `name` by `delta_deg` and keeps
    the other two, for a hand at (yaw, pitch, roll): with M = Ry Rx Rz, yaw is Ry(d) M, pitch
    Ry Rx(d) Ry^T M and roll M Rz(d) M^T M."""
    from scipy.spatial.transform import Rotation

    yaw, pitch, roll = yaw_pitch_roll_deg
    if name == "yaw":
        return Rotation.from_euler("Y", delta_deg, degrees=True).as_matrix()
    if name == "pitch":
        ry = Rotation.from_euler("Y", yaw, degrees=True).as_matrix()
        return ry @ Rotation.from_euler("X", delta_deg, degrees=True).as_matrix() @ ry.T
    m = Rotation.from_euler("YXZ", [yaw, pitch, roll], degrees=True).as_matrix()
    return m @ Rotation.from_euler("Z", delta_deg, degrees=True).as_matrix() @ m.T


def _turned(
    estimator: HandPoseEstimator, z: np.ndarray, measured: np.ndarray, name: str, delta: float
) -> np.ndarray:
    """z with its decoded pose turned about the palm (the root joint) and encoded again."""
    joints = estimator.decode_latent(z[None])[0].astype(np.float64)
    root = joints[estimator.convention.root]
    q = turn(measured[[MEASURES.index(a) for a in ORIENTATION]], name, delta)
    return estimator.encode_joints(((joints - root) @ q.T + root)[None])[0]


def edit_attribute(
    estimator: HandPoseEstimator,
    axes: LatentAxes,
    z: np.ndarray,
    name: str,
    value: float,
    cfg: EditConfig = EditConfig(),
) -> Edit:
    """Move latent z (L,) so that attribute `name` of its decoded pose becomes `value` and every
    other measure stays (module docstring). Returns where it got; a value the decoder cannot
    reach ends as close as `max_iterations` allow."""
    if name not in MEASURES[: len(ATTRIBUTES)]:
        raise ValueError(f"unknown attribute {name!r}; expected one of {MEASURES[: len(ATTRIBUTES)]}")
    k = MEASURES.index(name)
    z = np.asarray(z, np.float64)
    start = measure(estimator, z)[0]
    total = float(difference(np.full(len(start), value), start)[k])
    if name in ORIENTATION:
        target = start.copy()
        target[k] = start[k] + total
        z = _turned(estimator, z, start, name, total)
        for _ in range(cfg.iterations + 1):
            z = _gauss_newton(estimator, axes, z, target, cfg)
        return Edit(latent=z, measured=measure(estimator, z)[0], target=target)
    steps = max(1, math.ceil(abs(total) / cfg.step))
    iterations = 0
    for i in range(1, steps + 1):
        target = start.copy()
        target[k] = start[k] + total * i / steps
        for _ in range(cfg.iterations if i < steps else cfg.iterations + 1):
            if iterations == cfg.max_iterations:
                break
            z = _gauss_newton(estimator, axes, z, target, cfg)
            iterations += 1
    return Edit(latent=z, measured=measure(estimator, z)[0], target=target)


def attribute_path(
    estimator: HandPoseEstimator,
    axes: LatentAxes,
    z: np.ndarray,
    name: str,
    values: np.ndarray,
    cfg: EditConfig = EditConfig(),
) -> np.ndarray:
    """(T, L) latents along a named slider, one per value of `values` (T,): a walk along the knob.
    It starts at the value nearest z's own and goes outward both ways, each edit starting where
    its neighbour ended, so no step is longer than the values' spacing."""
    values = np.asarray(values, np.float64)
    k = MEASURES.index(name)
    gap = values - measure(estimator, z)[0, k]
    first = int(np.argmin(np.abs((gap + 180.0) % 360.0 - 180.0 if _ANGLE[k] else gap)))
    out: list[np.ndarray | None] = [None] * len(values)
    for order in (range(first, -1, -1), range(first, len(values))):
        point = np.asarray(z, np.float64)
        for i in order:
            point = (
                out[i]
                if out[i] is not None
                else edit_attribute(estimator, axes, point, name, values[i], cfg).latent
            )
            out[i] = point
    return np.stack(out)


# ---------------------------------------------------------------------------------------------
# The sliders' ranges


@dataclass(frozen=True)
class NamedSliders:
    """What the latent tab's named sliders show: one per attribute, over the decoder's range."""

    names: tuple[str, ...]
    labels: tuple[str, ...]  # "index curl (deg)"
    info: tuple[str, ...]  # how each is measured
    low: np.ndarray  # (A,) slider ranges: the 2nd-98th percentile of the training latents' poses
    high: np.ndarray


def named_sliders(
    estimator: HandPoseEstimator, axes: LatentAxes, samples: int = 4000, seed: int = 0
) -> NamedSliders:
    """The sliders' ranges from poses decoded from the training latents' Gaussian (milliseconds:
    no data file needed); circular attributes span the whole circle."""
    m = measure(estimator, axes.sample(np.random.default_rng(seed), samples))[:, : len(ATTRIBUTES)]
    low, high = np.percentile(m, [2, 98], axis=0)
    circular = _CIRCULAR[: len(ATTRIBUTES)]
    low, high = np.where(circular, -180.0, np.floor(low)), np.where(circular, 180.0, np.ceil(high))
    return NamedSliders(
        names=tuple(a.name for a in ATTRIBUTES),
        labels=tuple(f"{a.name} ({a.unit})" for a in ATTRIBUTES),
        info=tuple(a.what for a in ATTRIBUTES),
        low=low,
        high=high,
    )


# ---------------------------------------------------------------------------------------------
# The global anchors: GANSpace and InterFaceGAN


def regression_targets(measures: np.ndarray) -> np.ndarray:
    """(N, M) measures -> (N, Q) what a linear model can fit: circular angles as (cos, sin)."""
    cols = []
    for k, circular in enumerate(_CIRCULAR):
        angle = np.radians(measures[:, k])
        cols += [np.cos(angle), np.sin(angle)] if circular else [measures[:, k]]
    return np.column_stack(cols)


def _target_columns() -> list[list[int]]:
    """For each measure, its column(s) among `regression_targets`."""
    out, q = [], 0
    for circular in _CIRCULAR:
        width = 2 if circular else 1
        out.append(list(range(q, q + width)))
        q += width
    return out


GLOBAL_METHODS = ("GANSpace", "InterFaceGAN", "InterFaceGAN conditional")


def fit_global_directions(u: np.ndarray, measures: np.ndarray, alpha: float = 1.0) -> dict[str, np.ndarray]:
    """Per method of GLOBAL_METHODS, a (K, Q) matrix whose column q is the whitened latent move per
    unit change of regression target q, fitted on latents u (N, K) (whitened: `LatentAxes.to_sigmas`)
    and their measures (N, M). GANSpace: the principal direction most correlated with the target,
    scaled by its regression slope; InterFaceGAN: the ridge normal w / |w|^2; conditional: W^+."""
    from sklearn.linear_model import Ridge  # imported here: it takes seconds, only fitting needs it

    y = regression_targets(measures)
    w = Ridge(alpha=alpha).fit(u, y).coef_  # (Q, K)
    uc, yc = u - u.mean(axis=0), y - y.mean(axis=0)
    cov = uc.T @ yc / len(u)  # (K, Q)
    corr = cov / np.outer(uc.std(axis=0), yc.std(axis=0) + 1e-12)
    best = np.abs(corr).argmax(axis=0)  # (Q,)
    ganspace = np.zeros_like(cov)
    ganspace[best, np.arange(len(best))] = uc[:, best].var(axis=0) / cov[best, np.arange(len(best))]
    return {
        "GANSpace": ganspace,
        "InterFaceGAN": (w / np.sum(w**2, axis=1, keepdims=True)).T,
        "InterFaceGAN conditional": np.linalg.pinv(w),
    }


def global_move(per_target: np.ndarray, measured: np.ndarray, name: str, delta: float) -> np.ndarray:
    """The whitened latent move (K,) of a global direction that asks attribute `name` to change by
    `delta` at a point with `measured` (M,) measures; a circular angle turns its (cos, sin)."""
    k = MEASURES.index(name)
    cols = _target_columns()[k]
    if _CIRCULAR[k]:
        theta = math.radians(measured[k])
        change = np.array([-math.sin(theta), math.cos(theta)]) * math.radians(delta)
    else:
        change = np.array([delta])
    return per_target[:, cols] @ change
