"""Known answers for the noise calibration: every multiplier is checked against dp-accounting's own epsilon."""

import itertools
import math

import dp_accounting
import pytest
from dp_accounting.pld import PLDAccountant
from dp_accounting.rdp import RdpAccountant

from privrec.errors import ConfigError
from privrec.privacy.accounting import (
    calibrate_noise_multiplier,
    check_delta,
    check_epsilon,
    dp_event,
    epsilon_spent,
)

DELTA = 1e-5


def library_epsilon(z: float, releases: int, *, mechanism: str = "gaussian", accountant: str = "pld",
                    delta: float = DELTA) -> float:
    """dp-accounting's epsilon for ``releases`` releases with multiplier ``z``, with the library's default
    accountant settings (independent of the discretisation privrec calibrates with)."""
    one = dp_accounting.GaussianDpEvent(z) if mechanism == "gaussian" else dp_accounting.LaplaceDpEvent(z)
    acc = PLDAccountant() if accountant == "pld" else RdpAccountant()
    return acc.compose(dp_accounting.SelfComposedDpEvent(one, releases)).get_epsilon(delta)


@pytest.mark.parametrize(("epsilon", "releases"), [(0.1, 50), (0.5, 1), (1.0, 1), (1.0, 15), (4.0, 15), (8.0, 2)])
@pytest.mark.parametrize("accountant", ["pld", "rdp"])
def test_calibrated_multiplier_gives_back_the_target_epsilon(epsilon, releases, accountant):
    z = calibrate_noise_multiplier(epsilon, DELTA, releases=releases, accountant=accountant)
    assert z > 0
    got = library_epsilon(z, releases, accountant=accountant)
    assert got == pytest.approx(epsilon, rel=1e-3)
    # never less private than asked (up to the library's own discretisation)
    assert epsilon_spent(z, DELTA, releases=releases, accountant=accountant) <= epsilon * (1 + 1e-9)


def test_single_gaussian_release_is_the_analytic_gaussian_mechanism():
    # Balle & Wang (2018): the exact sigma of one Gaussian release, computed by dp-accounting's own closed form;
    # for epsilon=1, delta=1e-5 it is 3.7306 (a published known answer).
    z = calibrate_noise_multiplier(1.0, DELTA, releases=1)
    assert z == pytest.approx(dp_accounting.get_sigma_gaussian(1.0, DELTA), rel=1e-3)
    assert z == pytest.approx(3.7306, abs=1e-3)


def test_laplace_single_release_is_about_one_over_epsilon():
    # the Laplace mechanism with scale 1/epsilon (per unit of L1 sensitivity) is epsilon-DP: at a small delta
    # the PLD accountant allows a slightly smaller scale, never a larger one
    for epsilon in (0.5, 1.0, 2.0):
        z = calibrate_noise_multiplier(epsilon, DELTA, releases=1, mechanism="laplace")
        assert 0.9 / epsilon < z <= 1.0 / epsilon + 1e-6
        assert library_epsilon(z, 1, mechanism="laplace") == pytest.approx(epsilon, rel=1e-3)


def test_monotone_in_epsilon_and_releases():
    by_eps = [calibrate_noise_multiplier(e, DELTA, releases=5) for e in (0.25, 0.5, 1.0, 2.0, 4.0)]
    assert all(a > b for a, b in itertools.pairwise(by_eps)), "smaller epsilon must mean more noise"
    by_t = [calibrate_noise_multiplier(1.0, DELTA, releases=t) for t in (1, 2, 5, 15)]
    assert all(a < b for a, b in itertools.pairwise(by_t)), "more releases must mean more noise"
    by_delta = [calibrate_noise_multiplier(1.0, d, releases=5) for d in (1e-3, 1e-5, 1e-7)]
    assert all(a < b for a, b in itertools.pairwise(by_delta)), "smaller delta must mean more noise"


def test_rdp_is_never_tighter_than_pld():
    for epsilon, releases in ((0.5, 3), (2.0, 15)):
        pld = calibrate_noise_multiplier(epsilon, DELTA, releases=releases, accountant="pld")
        rdp = calibrate_noise_multiplier(epsilon, DELTA, releases=releases, accountant="rdp")
        assert pld < rdp


def test_infinite_epsilon_means_no_noise():
    assert calibrate_noise_multiplier(math.inf, DELTA, releases=10) == 0.0
    assert epsilon_spent(0.0, DELTA, releases=10) == math.inf


def test_event_shape():
    event = dp_event(2.0, releases=7)
    assert event == dp_accounting.SelfComposedDpEvent(dp_accounting.GaussianDpEvent(2.0), 7)
    assert dp_event(3.0, releases=1, mechanism="laplace").event == dp_accounting.LaplaceDpEvent(3.0)


def test_bad_arguments_raise_config_errors():
    with pytest.raises(ConfigError):
        calibrate_noise_multiplier(1.0, DELTA, releases=1, mechanism="exponential")
    with pytest.raises(ConfigError):
        calibrate_noise_multiplier(1.0, DELTA, releases=1, accountant="moments")
    with pytest.raises(ConfigError):
        calibrate_noise_multiplier(1.0, 0.0, releases=1)
    with pytest.raises(ConfigError):
        calibrate_noise_multiplier(1.0, DELTA, releases=0)


def test_hyperparameter_checks():
    assert check_epsilon("dp_als", "inf") == math.inf
    assert check_epsilon("dp_als", 2) == 2.0
    with pytest.raises(ConfigError, match=r"^dp_als\.epsilon must be > 0; got -1\.$"):
        check_epsilon("dp_als", -1)
    with pytest.raises(ConfigError, match=r"^dp_als\.epsilon must be > 0; got 0\.$"):
        check_epsilon("dp_als", 0.0)
    for bad in ("abc", None, True, float("nan")):
        with pytest.raises(ConfigError, match=r"^dp_als\.epsilon must be a number > 0 \(inf: no noise\); got "):
            check_epsilon("dp_als", bad)
    assert check_delta("dp_itemknn", 1e-6) == 1e-6
    for bad in (0, 1, -0.5, "x", True):
        with pytest.raises(ConfigError, match=r"^dp_itemknn\.delta must be in \(0, 1\); got "):
            check_delta("dp_itemknn", bad)
