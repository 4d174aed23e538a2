"""Split-test statistics, exact and dependency-free (see docs/metrics.md).

- Bayesian: Beta(1 + c, 1 + n - c) per variant; probability to beat control and expected
  loss by the exact closed forms (Evan Miller; Chris Stucchio), no sampling.
- Frequentist: two-proportion z-test against control, two-sided p-value.
- Wilson 95 % interval for each rate.
- Sample-ratio mismatch: chi-square of assignment counts against the weights.
- Guidance: no verdict before each variant has >= 100 visitors, n*p >= 5, n*(1-p) >= 5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054
MIN_VISITORS = 100
SRM_ALPHA = 0.001


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def prob_b_beats_a(a_a: float, b_a: float, a_b: float, b_b: float) -> float:
    """P(X_B > X_A) for X_A ~ Beta(a_a, b_a), X_B ~ Beta(a_b, b_b); a_b an integer.

    Evan Miller's closed form: sum over i < a_b of
    B(a_a + i, b_a + b_b) / ((b_b + i) B(1 + i, b_b) B(a_a, b_a)).
    Consecutive terms differ by the factor (a_a + i)(b_b + i) / ((a_a + b_a + b_b + i)
    (1 + i)), so each costs two logarithms; the sum is taken in log space, which stays
    exact where single terms underflow. When a_a is the smaller integer count, the
    complement P(X_A > X_B) is summed instead (fewer terms, same value).
    """
    if float(a_a).is_integer() and a_a < a_b:
        return 1.0 - _miller_sum(a_b, b_b, a_a, b_a)
    return _miller_sum(a_a, b_a, a_b, b_b)


def _miller_sum(a_a: float, b_a: float, a_b: float, b_b: float) -> float:
    log_term = (
        _log_beta(a_a, b_a + b_b)
        - math.log(b_b)
        - _log_beta(1, b_b)
        - _log_beta(a_a, b_a)
    )
    logs = [log_term]
    for i in range(int(a_b) - 1):
        log_term += math.log((a_a + i) * (b_b + i)) - math.log(
            (a_a + b_a + b_b + i) * (1 + i)
        )
        logs.append(log_term)
    top = max(logs)
    total = math.exp(top) * math.fsum(math.exp(x - top) for x in logs)
    return min(1.0, max(0.0, total))


def expected_loss(a_a: float, b_a: float, a_b: float, b_b: float) -> float:
    """E[max(X_A - X_B, 0)]: what choosing B costs in rate if A is in fact better."""
    mean_a_term = math.exp(_log_beta(a_a + 1, b_a) - _log_beta(a_a, b_a))
    mean_b_term = math.exp(_log_beta(a_b + 1, b_b) - _log_beta(a_b, b_b))
    # P(X_{a_a+1} > X_B) and P(X_A > X_{a_b+1}), each via the closed form.
    p1 = 1.0 - prob_b_beats_a(a_a + 1, b_a, a_b, b_b)
    p2 = 1.0 - prob_b_beats_a(a_a, b_a, a_b + 1, b_b)
    return max(0.0, mean_a_term * p1 - mean_b_term * p2)


def normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2))


def two_proportion_p_value(c_a: int, n_a: int, c_b: int, n_b: int) -> float | None:
    if n_a == 0 or n_b == 0:
        return None
    pooled = (c_a + c_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se == 0:
        return 1.0
    z = (c_b / n_b - c_a / n_a) / se
    return min(1.0, 2 * normal_sf(abs(z)))


def wilson_interval(c: int, n: int) -> tuple[float, float]:
    if n == 0:
        return (0.0, 0.0)
    p = c / n
    denom = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denom
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def chi_square_sf(x: float, df: int) -> float:
    """Upper tail of the chi-square distribution (regularized gamma Q(df/2, x/2))."""
    if x <= 0:
        return 1.0
    a, x2 = df / 2.0, x / 2.0
    # Series for P(a, x) when x < a + 1, else Lentz continued fraction for Q(a, x).
    if x2 < a + 1:
        term = total = 1.0 / a
        k = a
        for _ in range(1000):
            k += 1
            term *= x2 / k
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        p = total * math.exp(-x2 + a * math.log(x2) - math.lgamma(a))
        return max(0.0, 1.0 - p)
    tiny = 1e-300
    b = x2 + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return min(1.0, math.exp(-x2 + a * math.log(x2) - math.lgamma(a)) * h)


def sample_ratio_p_value(counts: list[int], weights: list[float]) -> float | None:
    total, weight_sum = sum(counts), sum(weights)
    if total == 0 or weight_sum <= 0 or len(counts) < 2:
        return None
    chi2 = 0.0
    for observed, weight in zip(counts, weights, strict=True):
        expected = total * weight / weight_sum
        if expected > 0:
            chi2 += (observed - expected) ** 2 / expected
    return chi_square_sf(chi2, len(counts) - 1)


@dataclass(frozen=True)
class VariantInput:
    key: str
    label: str
    visitors: int
    conversions: int
    revenue_minor: int = 0
    weight: float = 1.0


@dataclass(frozen=True)
class VariantResult:
    key: str
    label: str
    visitors: int
    conversions: int
    rate: float
    interval: tuple[float, float]
    revenue_per_visitor_minor: float
    is_control: bool
    prob_beat_control: float | None
    expected_loss: float | None
    p_value: float | None
    enough_data: bool


@dataclass(frozen=True)
class SplitTestResult:
    variants: list[VariantResult]
    srm_p_value: float | None
    srm_warning: bool
    ready: bool  # every variant has enough data for a verdict
    guidance: str


def _enough(n: int, c: int) -> bool:
    if n < MIN_VISITORS:
        return False
    p = c / n
    return n * p >= 5 and n * (1 - p) >= 5


def analyse(variants: list[VariantInput]) -> SplitTestResult:
    """Compare every variant with the first one (the control)."""
    if not variants:
        return SplitTestResult([], None, False, False, "No variants.")
    control = variants[0]
    a_a, b_a = 1 + control.conversions, 1 + control.visitors - control.conversions
    results = []
    for i, v in enumerate(variants):
        rate = v.conversions / v.visitors if v.visitors else 0.0
        is_control = i == 0
        prob = loss = p_value = None
        if not is_control:
            a_b, b_b = 1 + v.conversions, 1 + v.visitors - v.conversions
            prob = prob_b_beats_a(a_a, b_a, a_b, b_b)
            loss = expected_loss(a_a, b_a, a_b, b_b)
            p_value = two_proportion_p_value(
                control.conversions, control.visitors, v.conversions, v.visitors
            )
        results.append(
            VariantResult(
                key=v.key,
                label=v.label,
                visitors=v.visitors,
                conversions=v.conversions,
                rate=rate,
                interval=wilson_interval(v.conversions, v.visitors),
                revenue_per_visitor_minor=v.revenue_minor / v.visitors
                if v.visitors
                else 0.0,
                is_control=is_control,
                prob_beat_control=prob,
                expected_loss=loss,
                p_value=p_value,
                enough_data=_enough(v.visitors, v.conversions),
            )
        )
    srm = sample_ratio_p_value(
        [v.visitors for v in variants], [v.weight for v in variants]
    )
    srm_warning = srm is not None and srm < SRM_ALPHA
    ready = all(r.enough_data for r in results)
    if srm_warning:
        guidance = (
            "The split does not match the weights (sample-ratio mismatch, "
            f"p = {srm:.1e}): fix the assignment before trusting any result."
        )
    elif not ready:
        guidance = (
            f"Not enough data for a verdict yet: wait until every variant has at least "
            f"{MIN_VISITORS} visitors and at least 5 conversions and 5 non-conversions."
        )
    else:
        guidance = "Enough data to compare variants."
    return SplitTestResult(results, srm, srm_warning, ready, guidance)
