"""Sample-quality metrics on features and class predictions; pure functions of tensors.

FID and KID are torchmetrics' implementations, fed features computed once (see ``Precomputed``);
precision/recall (Kynkaanniemi et al. 2019) and density/coverage (Naeem et al. 2020) are the
k-nearest-neighbour definitions of those papers; the class metrics follow the Stacked MNIST
protocol (Metz et al. 2017; Lin et al. 2018): a mode is covered when at least one sample lands in it.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor, nn


class Precomputed(nn.Module):
    """The identity, as torchmetrics' "custom feature module": features are extracted once by the
    evaluator and shared by FID, KID and the k-NN metrics (Inception at 10k samples takes minutes)."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: Tensor) -> Tensor:
        return features


def fid(real: Tensor, fake: Tensor) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (N, F) and (M, F)."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=Precomputed(real.shape[1]))
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    return max(float(metric.compute()), 0.0)


def fid_low_rank(real: Tensor, fake: Tensor) -> float:
    """The Frechet distance of ``fid``, computed exactly for few samples: with the centred features
    A (n, F) and B (m, F), tr sqrt(S_A S_B) is the nuclear norm of A B^T / sqrt((n - 1)(m - 1)), so an
    n x m singular value problem replaces the F x F eigenproblem (per-class FIDs of small classes)."""
    a, b = real.double(), fake.double()
    n, m = len(a), len(b)
    if n < 2 or m < 2:
        raise ValueError("FID needs at least two samples of each set")
    mean_a, mean_b = a.mean(dim=0), b.mean(dim=0)
    a, b = a - mean_a, b - mean_b
    cross = torch.linalg.svdvals(a @ b.T).sum() / math.sqrt((n - 1) * (m - 1))
    distance = (mean_a - mean_b).square().sum() + a.square().sum() / (n - 1) + b.square().sum() / (m - 1) - 2 * cross
    return max(float(distance), 0.0)


def kid(real: Tensor, fake: Tensor, *, subsets: int = 100, subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance (cubic polynomial kernel MMD^2): mean and standard deviation over
    ``subsets`` random subsets of ``subset_size`` (capped at the smaller set's size)."""
    from torchmetrics.image.kid import KernelInceptionDistance

    size = min(subset_size, len(real), len(fake))
    with warnings.catch_warnings():  # "will save all extracted features": they are small here
        warnings.simplefilter("ignore", UserWarning)
        metric = KernelInceptionDistance(feature=Precomputed(real.shape[1]), subsets=subsets, subset_size=size)
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    with torch.random.fork_rng():  # torchmetrics draws the subsets from the global RNG
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)


def _kth_distances(x: Tensor, k: int, chunk: int = 2048) -> Tensor:
    """Distance from each row of x to its k-th nearest other row."""
    out = []
    for start in range(0, len(x), chunk):
        d = torch.cdist(x[start:start + chunk], x)
        out.append(d.kthvalue(k + 1, dim=1).values)  # k+1: the row itself is at distance 0
    return torch.cat(out)


def _inside_any(points: Tensor, centres: Tensor, radii: Tensor, chunk: int = 2048) -> Tensor:
    """(len(points),) count of the balls B(centre_i, radius_i) each point lies in."""
    counts = []
    for start in range(0, len(points), chunk):
        d = torch.cdist(points[start:start + chunk], centres)
        counts.append((d <= radii[None, :]).sum(dim=1))
    return torch.cat(counts)


def real_radii(real: Tensor, k: int) -> Tensor:
    """Each real feature's distance to its k-th nearest other one: what precision/recall and
    density/coverage need of the real split, the same for every evaluation (so it is cached)."""
    return _kth_distances(real.float(), k)


def precision_recall(real: Tensor, fake: Tensor, k: int = 3, radii: Tensor | None = None) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019): precision is the fraction of fakes
    inside the real manifold (the union of balls to each real's k-th neighbour), recall the fraction
    of reals inside the fake manifold. ``radii``: ``real_radii(real, k)``, when already known."""
    real, fake = real.float(), fake.float()
    radii = _kth_distances(real, k) if radii is None else radii
    precision = (_inside_any(fake, real, radii) > 0).float().mean()
    recall = (_inside_any(real, fake, _kth_distances(fake, k)) > 0).float().mean()
    return float(precision), float(recall)


def density_coverage(real: Tensor, fake: Tensor, k: int = 5, radii: Tensor | None = None) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020): density counts, per fake, the real k-NN balls it
    falls in, divided by k (about 1 for a perfect model, above 1 when fakes crowd dense regions);
    coverage is the fraction of real balls that contain at least one fake. ``radii``: as for
    ``precision_recall``."""
    real, fake = real.float(), fake.float()
    radii = _kth_distances(real, k) if radii is None else radii
    density = _inside_any(fake, real, radii).float().sum() / (k * len(fake))
    covered = torch.zeros(len(real), dtype=torch.bool, device=real.device)
    for start in range(0, len(fake), 2048):
        d = torch.cdist(fake[start:start + 2048], real)
        covered |= (d <= radii[None, :]).any(dim=0)
    return float(density), float(covered.float().mean())


def class_histogram(labels: Tensor, classes: int) -> Tensor:
    return torch.bincount(labels.flatten().long().cpu(), minlength=classes)[:classes]


def kl_to_uniform(histogram: Tensor) -> float:
    """KL(p || uniform) for the empirical distribution p of a histogram: sum p log(p K)."""
    p = histogram.double() / histogram.sum()
    nonzero = p[p > 0]
    return float((nonzero * torch.log(nonzero * len(histogram))).sum())


def covered(histogram: Tensor) -> int:
    """Modes with at least one sample (the Stacked MNIST protocol's count)."""
    return int((histogram > 0).sum())


def inception_score(logits: Tensor) -> float:
    """exp(E_x KL(p(y|x) || p(y))) of class logits (N, K); between 1 and K."""
    log_p = torch.log_softmax(logits.double(), dim=1)
    p = log_p.exp()
    log_marginal = torch.log(p.mean(dim=0))
    return float(torch.exp((p * (log_p - log_marginal)).sum(dim=1).mean()))


def mode_labels(channel_labels: Tensor, classes: int) -> Tensor:
    """One mode per image from per-channel labels (N, C): digits d1 d2 d3 -> 100 d1 + 10 d2 + d3."""
    weights = classes ** torch.arange(channel_labels.shape[1] - 1, -1, -1, device=channel_labels.device)
    return (channel_labels.long() * weights).sum(dim=1)


def mean_sd_ci(values: list[float]) -> tuple[float, float, float]:
    """Mean, sample standard deviation and the half-width of the 95% t confidence interval."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, float("nan"), float("nan")
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, sd, t_quantile(0.975, n - 1) * sd / math.sqrt(n)


# -- Student's t, for confidence intervals and Welch's test (no scipy needed) -------------------


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularized incomplete beta function (Numerical Recipes 6.4)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > 1e-300 else 1e-300)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > 1e-300 else 1e-300)
            c = 1.0 + aa / c
            c = c if abs(c) > 1e-300 else 1e-300
            h *= d * c
        if abs(d * c - 1.0) < 1e-14:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    lo, hi = -1e3, 1e3
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
    return (lo + hi) / 2


def welch_t(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """Welch's unequal-variance t test: (t, degrees of freedom, two-sided p)."""
    na, nb = len(a), len(b)
    ma, mb = sum(a) / na, sum(b) / nb
    va = sum((x - ma) ** 2 for x in a) / (na - 1)
    vb = sum((x - mb) ** 2 for x in b) / (nb - 1)
    se2 = va / na + vb / nb
    if se2 == 0:
        return (math.inf if ma != mb else 0.0), float(na + nb - 2), (0.0 if ma != mb else 1.0)
    t = (ma - mb) / math.sqrt(se2)
    df = se2 ** 2 / ((va / na) ** 2 / (na - 1) + (vb / nb) ** 2 / (nb - 1))
    return t, df, 2.0 * (1.0 - t_cdf(abs(t), df))
