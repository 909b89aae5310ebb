"""Privacy accounting for the central-DP models: (epsilon, delta, releases) -> noise multiplier, and back.

Everything here goes through Google's `dp-accounting <https://github.com/google/differential-privacy>`_
library (public API only): a run of ``releases`` noisy releases is the event
``SelfComposedDpEvent(GaussianDpEvent(z), releases)`` (or ``LaplaceDpEvent``), its epsilon at ``delta`` comes
from the privacy-loss-distribution accountant (``"pld"``, Meiser & Mohammadi 2018 / Doroshenko et al. 2022:
tight for the Gaussian mechanism) or the Renyi-DP accountant (``"rdp"``, Mironov 2017: looser, faster), and
the noise multiplier for a target epsilon is found by ``dp_accounting.calibrate_dp_mechanism`` (Brent's
root search over the multiplier, then a check that the returned multiplier does not exceed the target).
No composition formula is written here.

The noise multiplier ``z`` is relative to the L2 sensitivity (Gaussian: noise std ``z * sensitivity``) or the
L1 sensitivity (Laplace: scale ``z * sensitivity``) of one release; the sensitivity itself is the model's
business (it follows from its contribution bounds). The neighbouring relation is add/remove one unit (a
user, or one interaction), matching how the models derive their sensitivities.
"""

from __future__ import annotations

import functools
import math
from numbers import Real

import dp_accounting
from dp_accounting.pld import PLDAccountant
from dp_accounting.rdp import RdpAccountant

from privrec.errors import ConfigError

__all__ = [
    "ACCOUNTANTS",
    "MECHANISMS",
    "UNITS",
    "calibrate_noise_multiplier",
    "check_delta",
    "check_epsilon",
    "dp_event",
    "epsilon_spent",
]

#: Accountants: privacy loss distributions (tight) and Renyi DP (looser, faster).
ACCOUNTANTS: tuple[str, ...] = ("pld", "rdp")
#: Additive noise mechanisms the accountants know.
MECHANISMS: tuple[str, ...] = ("gaussian", "laplace")
#: Privacy units: whose presence the guarantee hides.
UNITS: tuple[str, ...] = ("user", "interaction")

#: Width of the PLD accountant's privacy-loss grid. Its estimates are pessimistic (an upper bound on epsilon);
#: 1e-3 is ten times faster than the library default 1e-4 and moves epsilon by < 1e-5 on the tested grid.
PLD_DISCRETIZATION = 1e-3
#: Relative tolerance of the calibrated noise multiplier (the library's tolerance is absolute).
_RELATIVE_TOL = 1e-6


def _fresh_accountant(accountant: str) -> dp_accounting.PrivacyAccountant:
    relation = dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE
    if accountant == "pld":
        return PLDAccountant(relation, value_discretization_interval=PLD_DISCRETIZATION)
    if accountant == "rdp":
        return RdpAccountant(neighboring_relation=relation)
    raise ConfigError(f"accountant must be one of {list(ACCOUNTANTS)}; got {accountant!r}.")


def dp_event(noise_multiplier: float, *, releases: int, mechanism: str = "gaussian") -> dp_accounting.DpEvent:
    """The dp-accounting event of ``releases`` adaptive releases, each with noise multiplier ``noise_multiplier``."""
    if mechanism == "gaussian":
        one: dp_accounting.DpEvent = dp_accounting.GaussianDpEvent(noise_multiplier)
    elif mechanism == "laplace":
        one = dp_accounting.LaplaceDpEvent(noise_multiplier)
    else:
        raise ConfigError(f"mechanism must be one of {list(MECHANISMS)}; got {mechanism!r}.")
    return dp_accounting.SelfComposedDpEvent(one, int(releases))


def epsilon_spent(noise_multiplier: float, delta: float, *, releases: int, mechanism: str = "gaussian",
                  accountant: str = "pld") -> float:
    """Epsilon at ``delta`` of ``releases`` releases with ``noise_multiplier``, as the accountant computes it
    (``inf`` for a multiplier of 0, i.e. no noise)."""
    if noise_multiplier <= 0 or not math.isfinite(noise_multiplier):
        return math.inf if noise_multiplier <= 0 else 0.0
    event = dp_event(noise_multiplier, releases=releases, mechanism=mechanism)
    return float(_fresh_accountant(accountant).compose(event).get_epsilon(delta))


@functools.lru_cache(maxsize=256)
def calibrate_noise_multiplier(epsilon: float, delta: float, *, releases: int, mechanism: str = "gaussian",
                               accountant: str = "pld") -> float:
    """The smallest noise multiplier (within a relative 1e-6) whose ``releases``-fold composition is
    ``(epsilon, delta)``-DP according to ``accountant``; 0.0 for ``epsilon = inf`` (no noise).

    Pure and deterministic, so results are cached per process. The search brackets the root with the
    Renyi-DP solution (an upper bound on the PLD one) before ``dp_accounting.calibrate_dp_mechanism``.
    """
    if math.isinf(epsilon):
        return 0.0
    if not epsilon > 0 or not 0 < delta < 1 or releases < 1:
        raise ConfigError(
            f"calibration needs epsilon > 0, delta in (0, 1) and releases >= 1; got {epsilon!r}, {delta!r}, "
            f"{releases!r}."
        )
    dp_event(1.0, releases=1, mechanism=mechanism)  # validates the mechanism name
    _fresh_accountant(accountant)  # validates the accountant name

    def calibrate(name: str, bracket: dp_accounting.mechanism_calibration.BracketInterval, tol: float) -> float:
        return float(dp_accounting.calibrate_dp_mechanism(
            functools.partial(_fresh_accountant, name),
            functools.partial(_event_for, releases=releases, mechanism=mechanism),
            epsilon, delta, bracket_interval=bracket, tol=tol,
        ))

    # RDP is fast: its multiplier (>= the PLD one) brackets the search and sets the absolute tolerance.
    rdp = calibrate("rdp", dp_accounting.LowerEndpointAndGuess(1e-9, 1.0), 1e-9)
    if accountant == "rdp":
        return rdp
    def spent(z: float) -> float:
        return epsilon_spent(z, delta, releases=releases, mechanism=mechanism, accountant=accountant)

    lower, upper = 0.8 * rdp, rdp
    for _ in range(40):  # the PLD multiplier is a little below the RDP one: a few halvings at most
        if spent(lower) > epsilon:
            break
        lower /= 2
    for _ in range(40):
        if spent(upper) <= epsilon:
            break
        upper *= 2
    bracket = dp_accounting.ExplicitBracketInterval(lower, upper)
    return calibrate(accountant, bracket, rdp * _RELATIVE_TOL)


def _event_for(noise_multiplier: float, *, releases: int, mechanism: str) -> dp_accounting.DpEvent:
    return dp_event(noise_multiplier, releases=releases, mechanism=mechanism)


# ---------------------------------------------------------------------- hyperparameter checks
def _show(value: object) -> str:
    if isinstance(value, Real) and not isinstance(value, bool):
        number = float(value)
        return repr(int(number)) if number.is_integer() else repr(number)
    return repr(value)


def check_epsilon(owner: str, value: object) -> float:
    """A number > 0, or infinity (also the string ``"inf"``: no noise, no guarantee)."""
    number = value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if isinstance(number, bool) or not isinstance(number, Real) or math.isnan(float(number)):
        raise ConfigError(f"{owner}.epsilon must be a number > 0 (inf: no noise); got {value!r}.")
    if not float(number) > 0:
        raise ConfigError(f"{owner}.epsilon must be > 0; got {_show(number)}.")
    return float(number)


def check_delta(owner: str, value: object) -> float:
    """A number in ``(0, 1)``."""
    if isinstance(value, bool) or not isinstance(value, Real) or not 0 < float(value) < 1:
        raise ConfigError(f"{owner}.delta must be in (0, 1); got {_show(value)}.")
    return float(value)
