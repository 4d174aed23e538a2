from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics import stats


def _monte_carlo(a_a, b_a, a_b, b_b, draws=200_000, seed=7):
    rng = random.Random(seed)
    wins = loss = 0.0
    for _ in range(draws):
        x, y = rng.betavariate(a_a, b_a), rng.betavariate(a_b, b_b)
        wins += y > x
        loss += max(x - y, 0.0)
    return wins / draws, loss / draws


@pytest.mark.parametrize(
    ("c_a", "n_a", "c_b", "n_b"),
    [(10, 100, 10, 100), (50, 1000, 70, 1000), (3, 40, 9, 45), (120, 1000, 100, 1000)],
)
def test_exact_bayes_matches_monte_carlo(c_a, n_a, c_b, n_b):
    """The closed forms agree with 200,000 fixed-seed draws to within 0.005."""
    args = (1 + c_a, 1 + n_a - c_a, 1 + c_b, 1 + n_b - c_b)
    prob, loss = stats.prob_b_beats_a(*args), stats.expected_loss(*args)
    mc_prob, mc_loss = _monte_carlo(*args)
    assert abs(prob - mc_prob) < 0.005
    assert abs(loss - mc_loss) < 0.0005


def test_identical_variants_are_a_coin_flip():
    assert stats.prob_b_beats_a(11, 91, 11, 91) == pytest.approx(0.5, abs=1e-9)


def test_z_test_known_value():
    """200/1000 vs 250/1000: z = 2.68, two-sided p = 0.0074."""
    assert stats.two_proportion_p_value(200, 1000, 250, 1000) == pytest.approx(
        0.00737, abs=5e-5
    )


def test_wilson_interval_known_value():
    low, high = stats.wilson_interval(10, 100)
    assert (round(low, 4), round(high, 4)) == (0.0552, 0.1744)


@pytest.mark.parametrize(
    ("x", "df", "p"),
    [
        (3.841459, 1, 0.05),
        (5.991465, 2, 0.05),
        (11.344867, 3, 0.01),
        (0.5, 3, 0.918891),
    ],
)
def test_chi_square_tail(x, df, p):
    assert stats.chi_square_sf(x, df) == pytest.approx(p, abs=1e-5)


def test_sample_ratio_mismatch_warns():
    """5,000 vs 5,500 under a 50/50 split is a mismatch; 5,000 vs 5,050 is not."""
    broken = stats.analyse(
        [
            stats.VariantInput("a", "A", 5000, 500),
            stats.VariantInput("b", "B", 5500, 560),
        ]
    )
    fine = stats.analyse(
        [
            stats.VariantInput("a", "A", 5000, 500),
            stats.VariantInput("b", "B", 5050, 560),
        ]
    )
    assert broken.srm_warning and "sample-ratio mismatch" in broken.guidance
    assert not fine.srm_warning


def test_no_verdict_on_small_samples():
    result = stats.analyse(
        [stats.VariantInput("a", "A", 80, 8), stats.VariantInput("b", "B", 90, 20)]
    )
    assert result.ready is False
    assert result.guidance.startswith("Not enough data")


@settings(max_examples=60, deadline=None)
@given(
    n_a=st.integers(1, 400),
    n_b=st.integers(1, 400),
    fa=st.floats(0, 1),
    fb=st.floats(0, 1),
)
def test_probabilities_are_complementary(n_a, n_b, fa, fb):
    """P(B > A) + P(A > B) = 1 for any counts."""
    c_a, c_b = int(n_a * fa), int(n_b * fb)
    a = (1 + c_a, 1 + n_a - c_a)
    b = (1 + c_b, 1 + n_b - c_b)
    assert stats.prob_b_beats_a(*a, *b) + stats.prob_b_beats_a(*b, *a) == pytest.approx(
        1.0, abs=1e-7
    )
