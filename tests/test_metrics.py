"""The metrics on synthetic features and labels, where the right answer is known."""

from __future__ import annotations

import math

import pytest
import torch

from ganzoo.evaluation import convergence, metrics


def gaussian(n: int, dim: int = 8, shift: float = 0.0, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed)) + shift


def test_fid_of_a_feature_set_against_itself_is_zero_and_grows_with_a_shift():
    real = gaussian(2000)
    assert metrics.fid(real, real) == pytest.approx(0.0, abs=1e-6)
    same_law = metrics.fid(real, gaussian(2000, seed=1))
    shifts = [metrics.fid(real, gaussian(2000, shift=s, seed=1)) for s in (0.5, 1.0, 2.0)]
    assert same_law < 0.1
    # FID of N(0, I) vs N(s, I) is |s|^2 * dim (plus sampling noise): 2, 8, 32 here
    assert shifts == sorted(shifts)
    for s, value in zip((0.5, 1.0, 2.0), shifts):
        assert value == pytest.approx(s * s * 8, rel=0.1)


def test_kid_is_near_zero_for_the_same_law_and_positive_for_a_shift():
    real = gaussian(1500)
    same, same_std = metrics.kid(real, gaussian(1500, seed=1), subsets=20, subset_size=500)
    shifted, _ = metrics.kid(real, gaussian(1500, shift=1.0, seed=1), subsets=20, subset_size=500)
    assert abs(same) < 3 * same_std + 1e-3
    assert shifted > 10 * max(abs(same), same_std)


def test_kid_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    metrics.kid(gaussian(200), gaussian(200, seed=1), subsets=5, subset_size=100)
    assert torch.equal(torch.rand(3), expected)


def test_precision_and_recall_on_toy_gaussians():
    real = gaussian(2000, dim=2)
    good_p, good_r = metrics.precision_recall(real, gaussian(2000, dim=2, seed=1))
    assert good_p > 0.9 and good_r > 0.9
    far_p, far_r = metrics.precision_recall(real, gaussian(2000, dim=2, shift=10.0, seed=1))
    assert far_p == 0.0 and far_r == 0.0
    # a fake that drops half the modes: fakes are realistic (precision high), half the reals are missed
    other = gaussian(4000, dim=2, seed=1)
    half = other[other[:, 0] > 0][:2000]
    p, r = metrics.precision_recall(real, half)
    assert p > 0.9
    assert 0.4 < r < 0.65


def test_density_and_coverage_on_toy_gaussians():
    real = gaussian(2000, dim=2)
    density, coverage = metrics.density_coverage(real, gaussian(2000, dim=2, seed=1))
    assert 0.85 < density < 1.15
    assert coverage > 0.9
    # all fakes piled on one real point: dense there, covering almost nothing
    density, coverage = metrics.density_coverage(real, real[:1].repeat(500, 1))
    assert coverage < 0.01
    far_density, far_coverage = metrics.density_coverage(real, gaussian(500, dim=2, shift=10.0))
    assert far_density == 0.0 and far_coverage == 0.0


def test_a_collapsed_fake_covers_one_class_with_kl_ln10():
    histogram = metrics.class_histogram(torch.full((1000,), 7), 10)
    assert metrics.covered(histogram) == 1
    assert metrics.kl_to_uniform(histogram) == pytest.approx(math.log(10))
    uniform = metrics.class_histogram(torch.arange(1000) % 10, 10)
    assert metrics.covered(uniform) == 10
    assert metrics.kl_to_uniform(uniform) == pytest.approx(0.0, abs=1e-12)


def test_inception_score_bounds():
    confident = torch.eye(10).repeat(50, 1) * 50  # every class, predicted with certainty
    assert metrics.inception_score(confident) == pytest.approx(10.0, rel=1e-6)
    one_class = torch.zeros(500, 10)
    one_class[:, 3] = 50
    assert metrics.inception_score(one_class) == pytest.approx(1.0, rel=1e-6)


def test_mode_labels_of_digit_triples():
    triples = torch.tensor([[0, 0, 0], [1, 2, 3], [9, 9, 9]])
    assert metrics.mode_labels(triples, 10).tolist() == [0, 123, 999]


def test_student_t_against_known_values():
    # scipy.stats.t.ppf(0.975, 2) = 4.302653; t.ppf(0.975, 10) = 2.228139; t.cdf(2.0, 5) = 0.949030 (checked by numerical integration of the density)
    assert metrics.t_quantile(0.975, 2) == pytest.approx(4.302653, rel=1e-5)
    assert metrics.t_quantile(0.975, 10) == pytest.approx(2.228139, rel=1e-5)
    assert metrics.t_cdf(2.0, 5) == pytest.approx(0.9490303, rel=1e-6)
    # scipy.stats.ttest_ind([1,2,3,4,5], [3,4,5,6,7], equal_var=False): t = -2.0, p = 0.080516
    t, df, p = metrics.welch_t([1, 2, 3, 4, 5], [3, 4, 5, 6, 7])
    assert t == pytest.approx(-2.0)
    assert df == pytest.approx(8.0)
    assert p == pytest.approx(0.080516, rel=1e-4)


def test_mean_sd_ci():
    mean, sd, ci = metrics.mean_sd_ci([1.0, 2.0, 3.0])
    assert (mean, sd) == (2.0, 1.0)
    assert ci == pytest.approx(4.302653 / math.sqrt(3), rel=1e-5)


def test_fid_plateau_is_the_first_evaluation_no_later_one_beats_by_more_than_the_margin():
    # best so far 80 at index 2; 78, 77 and 76 improve on it by less than 5% (76 >= 0.95 x 80)
    assert convergence.fid_plateau([150, 100, 80, 78, 77, 76]) == 2
    # a spike does not reset it: after index 1 (best 50) nothing goes below 47.5
    assert convergence.fid_plateau([100, 50, 60, 49, 48]) == 1
    # still improving by more than 5% at every step: not converged
    assert convergence.fid_plateau([100, 90, 80, 70, 60, 50]) is None
    # a plateau needs CONFIRM (2) later evaluations
    assert convergence.fid_plateau([100, 99, 98]) == 0 and convergence.fid_plateau([150, 100, 100]) is None
    assert convergence.fid_plateau([]) is None


def test_loss_band_needs_both_curves_flat_to_the_end():
    d = [0.5, 0.7, 0.72, 0.71, 0.70]
    assert convergence.loss_band([2.0, 1.5, 1.40, 1.42, 1.41], d) == 1  # G range 0.10 <= 10% of 1.43
    # 1.20 is out of the band of what follows it: from index 3 on
    assert convergence.loss_band([2.0, 1.5, 1.20, 1.42, 1.41, 1.40], [*d, 0.70]) == 3
    assert convergence.loss_band([2.0, 1.5, 1.40, 1.42, 1.41], [0.5, 0.9, 0.72, 0.71, 0.70]) == 2  # D leaves it at 1
    assert convergence.loss_band([3.0, 2.5, 2.0, 1.5, 1.0], d) is None
    assert convergence.loss_band([1.0, 1.0], [0.5, 0.5]) is None  # nothing after to confirm


def test_cached_real_radii_give_the_same_scores():
    generator = torch.Generator().manual_seed(3)
    real, fake = torch.randn(300, 8, generator=generator), torch.randn(200, 8, generator=generator) + 0.5
    assert metrics.precision_recall(real, fake, k=3, radii=metrics.real_radii(real, 3)) == metrics.precision_recall(real, fake, k=3)
    assert metrics.density_coverage(real, fake, k=5, radii=metrics.real_radii(real, 5)) == metrics.density_coverage(real, fake, k=5)
    assert metrics.precision_recall(real, fake, k=3, radii=metrics.real_radii(real, 3) * 0)[0] == 0.0  # the radii are used
