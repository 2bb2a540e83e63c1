"""Fits the polynomial behind float exp (core/simd/math.h, MathConstants<float>::exp_fitted)
and checks the whole exp as the kernels evaluate it.

    python tools/fit_exp.py [degree]     (default 6, the degree in use)

e^r on |r| <= ln2/2 is approximated by 1 + r + r^2 (c2 + c3 r + ... + c_d r^(d-2)); c0 = c1 = 1
stay exact (exp(0) is 1 exactly). The other coefficients minimise the largest relative error
by Lawson's iteration: weighted least squares whose weights grow where the error is large,
which converges to the minimax fit. The check replays the kernel's float arithmetic (the
Cody-Waite reduction with two parts of ln 2, Horner with fused multiply-adds, the scaling by
2^n) against float64 exp over [-87, 0] and reports the error in float ulp.
"""
from __future__ import annotations

import sys

import numpy as np

F32 = np.float32
LN2_HI, LN2_LO = F32(0.693359375), F32(-2.12194440e-4)


def fit(degree: int) -> np.ndarray:
    """c_d, ..., c2 (highest first, the order Horner's rule takes them), as float32."""
    half = np.log(2) / 2 * 1.0005
    r = np.linspace(-half, half, 20001)
    target = np.exp(r)
    powers = np.stack([r**k for k in range(2, degree + 1)], axis=1)
    rhs = target - 1 - r
    weights = np.ones_like(r)
    for _ in range(200):
        w = weights / target
        coeffs, *_ = np.linalg.lstsq(powers * w[:, None], rhs * w, rcond=None)
        err = (powers @ coeffs - rhs) / target
        weights *= np.sqrt(np.abs(err) + 1e-30)
        weights /= weights.mean()
    print(f"degree {degree}: polynomial's largest relative error {np.abs(err).max():.3e}")
    return coeffs[::-1].astype(F32)


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
