"""Fits the polynomials behind exp (core/simd/math.h, MathConstants<T>::exp_fitted) and
checks float exp as the kernels evaluate it.

    python tools/fit_exp.py [degree]            float (default degree 6, the one in use)
    python tools/fit_exp.py --double [degree]   double (default 11), fitted with mpmath (torch installs it)

e^r on |r| <= ln2/2 is approximated by 1 + r + r^2 (c2 + c3 r + ... + c_d r^(d-2)); c0 = c1 = 1
stay exact (exp(0) is 1 exactly). The other coefficients minimise the largest relative error
by Lawson's iteration: weighted least squares whose weights grow where the error is large,
which converges to the minimax fit. double's fit needs residuals far below float64's
rounding, so it runs in mpmath at 40 digits (about half a minute). The float check replays
the kernel's arithmetic (the Cody-Waite reduction with two parts of ln 2, Horner with fused
multiply-adds, the scaling by 2^n) against float64 exp over [-87, 0] and reports the error
in float ulp.
"""
from __future__ import annotations

import sys

import numpy as np

F32 = np.float32
LN2_HI, LN2_LO = F32(0.693359375), F32(-2.12194440e-4)


def lawson(powers: np.ndarray, rhs: np.ndarray, scale: np.ndarray, iterations: int) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients c minimising max |powers @ c - rhs| / scale (Lawson's iteration), and
    the errors they leave, (powers @ c - rhs) / scale."""
    weights = np.ones_like(rhs)
    for _ in range(iterations):
        w = weights / scale
        coeffs, *_ = np.linalg.lstsq(powers * w[:, None], rhs * w, rcond=None)
        err = (powers @ coeffs - rhs) / scale
        weights *= np.sqrt(np.abs(err) + 1e-300)
        weights /= weights.mean()
    return coeffs, err


def fit(degree: int) -> np.ndarray:
    """c_d, ..., c2 (highest first, the order Horner's rule takes them), as float32."""
    half = np.log(2) / 2 * 1.0005
    r = np.linspace(-half, half, 20001)
    target = np.exp(r)
    powers = np.stack([r**k for k in range(2, degree + 1)], axis=1)
    coeffs, err = lawson(powers, target - 1 - r, target, 200)
    print(f"degree {degree}: polynomial's largest relative error {np.abs(err).max():.3e}")
    return coeffs[::-1].astype(F32)


def fit_double(degree: int) -> list[float]:
    """c_d, ..., c2 for double, highest first."""
    import mpmath as mp

    mp.mp.dps = 40
    half = mp.log(2) / 2 * mp.mpf("1.0005")
    count = 600
    r = [half * mp.cos(mp.pi * (i + mp.mpf(0.5)) / count) for i in range(count)]
    target = [mp.exp(v) for v in r]
    powers = list(range(2, degree + 1))
    weights = [mp.mpf(1)] * count
    for _ in range(60):
        a = mp.matrix(count, len(powers))
        b = mp.matrix(count, 1)
        for i, (v, f) in enumerate(zip(r, target)):
            w = weights[i] / f
            for j, k in enumerate(powers):
                a[i, j] = w * v**k
            b[i] = w * (f - 1 - v)
        coeffs = mp.lu_solve(a.T * a, a.T * b)
        err = [(1 + v + sum(coeffs[j] * v**k for j, k in enumerate(powers)) - f) / f for v, f in zip(r, target)]
        weights = [w * mp.sqrt(abs(e) + mp.mpf("1e-40")) for w, e in zip(weights, err)]
        mean = sum(weights) / count
        weights = [w / mean for w in weights]
    worst = max(abs(e) for e in err)
    print(f"double degree {degree}: polynomial's largest relative error {mp.nstr(worst, 3)} "
          f"({mp.nstr(worst / mp.mpf(2) ** -52, 3)} ulp)")
    return [float(coeffs[j]) for j in reversed(range(len(powers)))]


def fma(a, b, c):
    """float32 fused multiply-add: the float64 product of two floats is exact, one rounding."""
    return (a.astype(np.float64) * b.astype(np.float64) + c.astype(np.float64)).astype(F32)


def kernel_exp(x: np.ndarray, coeffs: np.ndarray) -> np.ndarray:
    n = np.round((x * F32(1.4426950408889634)).astype(F32)).astype(F32)
    r = fma(-n, np.full_like(x, LN2_HI), x)
    r = fma(-n, np.full_like(x, LN2_LO), r)
    p = np.full_like(x, coeffs[0])
    for c in coeffs[1:]:
        p = fma(p, r, np.full_like(x, c))
    p = fma(p, r, np.full_like(x, F32(1)))
    e_r = fma(p, r, np.full_like(x, F32(1)))
    return (e_r.astype(np.float64) * np.exp2(n.astype(np.float64))).astype(F32)


def main() -> None:
    if sys.argv[1:2] == ["--double"]:
        degree = int(sys.argv[2]) if len(sys.argv) > 2 else 11
        print("coefficients, highest power first:", ", ".join(repr(c) for c in fit_double(degree)))
        return
    degree = int(sys.argv[1]) if len(sys.argv) > 1 else 6
    coeffs = fit(degree)
    print("coefficients, highest power first:", ", ".join(f"{c:.9e}f" for c in coeffs))
    x = np.concatenate([np.linspace(-87, 0, 4_000_001), np.linspace(-1, 0, 2_000_001)]).astype(F32)
    exact = np.exp(x.astype(np.float64))
    ulps = np.abs(kernel_exp(x, coeffs).astype(np.float64) - exact) / np.spacing(exact.astype(F32)).astype(np.float64)
    print(f"float exp on [-87, 0]: largest error {ulps.max():.3f} ulp, mean {ulps.mean():.4f}, "
          f"beyond 1 ulp {np.mean(ulps > 1):.2%}")


if __name__ == "__main__":
    main()
