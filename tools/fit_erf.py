"""Fits the interval tables behind float erf and gelu (core/simd/math.h, ErfTable<N>) and
checks both as the kernels evaluate them.

    python tools/fit_erf.py [intervals degree]   default: both tables in use (16 x 5, 8 x 6)

erf(z)/2 on 0 <= z < 4 + width/2 (past 3.92 float erf rounds to 1) is cut into `intervals`
equal pieces centred on the whole positions s = z / width, width = 4 / (intervals - 1): on piece i (s
rounded to the nearest whole number) t = s - i lies in [-1/2, 1/2] (the first piece: [0, 1/2]),
and erf(z)/2 is a polynomial in t of the given degree. The coefficients minimise the largest error by Lawson's
iteration (weighted least squares whose weights grow where the error is large): the absolute
error on every piece but the first, the relative error on the first, whose constant term is
held at exactly 0 so that erf keeps its relative accuracy down to the smallest z (erf(z) ~
2z/sqrt(pi) there). The check replays the kernel's float arithmetic (the scaled position, its
floor, Horner with fused multiply-adds) against float64: erf's error in float ulp over
[-5, 5] plus tiny arguments, gelu's largest absolute error over [-10, 10].
"""
from __future__ import annotations

import math
import sys

import numpy as np

from fit_exp import fma, lawson

F32 = np.float32
LAST = 4.0  # the last piece's centre: erf(4)/2 rounds to 1/2 in float, so gelu(x << 0) is -0
ERF = np.vectorize(math.erf)


def width(intervals: int) -> float:
    return LAST / (intervals - 1)


def fit_piece(i: int, intervals: int, degree: int) -> np.ndarray:
    """Coefficients of piece i, highest power first, as float32."""
    first = i == 0
    t = -0.5 * np.cos(np.linspace(0, np.pi, 4001))  # dense near both ends, t in [-1/2, 1/2]
    if first:
        t = t[t >= 0]
    target = ERF((i + t) * width(intervals)) / 2
    powers = np.stack([t**k for k in range(1 if first else 0, degree + 1)], axis=1)
    scale = np.where(t > 0, target, 1.0) if first else np.ones_like(t)
    coeffs, _ = lawson(powers, target, scale, 300)
    if first:
        coeffs = np.concatenate([[0.0], coeffs])
    return coeffs[::-1].astype(F32)


def fit(intervals: int, degree: int) -> np.ndarray:
    """table[k][i]: the coefficient of t^(degree - k) on piece i (one row per Horner step)."""
    return np.stack([fit_piece(i, intervals, degree) for i in range(intervals)], axis=1)


def kernel_half_erf(position: np.ndarray, table: np.ndarray) -> np.ndarray:
    """erf(|z|)/2 from the position |z| / width, as the kernel computes it."""
    intervals = table.shape[1]
    s = np.minimum(position, F32(np.nextafter(F32(intervals - 0.5), F32(0))))
    whole = np.round(s)
    t = (s - whole).astype(F32)
    index = whole.astype(np.int64)
    p = table[0][index]
    for row in table[1:]:
        p = fma(p, t, row[index])
    return p


def kernel_erf(x: np.ndarray, table: np.ndarray) -> np.ndarray:
    position = (np.abs(x) * F32(1 / width(table.shape[1]))).astype(F32)
    return np.copysign(F32(2) * kernel_half_erf(position, table), x)


def kernel_gelu(x: np.ndarray, table: np.ndarray) -> np.ndarray:
    position = (np.abs(x) * F32(1 / width(table.shape[1]) / math.sqrt(2))).astype(F32)
    half = np.copysign(kernel_half_erf(position, table), x)
    return (x * (F32(0.5) + half)).astype(F32)


def check(table: np.ndarray) -> None:
    x = np.concatenate([np.linspace(-5, 5, 2_000_001), np.geomspace(1e-30, 1e-2, 100_001)]).astype(F32)
    exact = ERF(x.astype(np.float64))
    ulps = np.abs(kernel_erf(x, table).astype(np.float64) - exact) / np.spacing(np.abs(exact).astype(F32))
    rel = np.abs(kernel_erf(x, table).astype(np.float64) - exact)[exact != 0] / np.abs(exact[exact != 0])
    print(f"  float erf: largest error {ulps.max():.3f} ulp at {x[ulps.argmax()]}, mean {ulps.mean():.4f}, "
          f"largest relative error {rel.max():.3e}")
    x = np.linspace(-10, 10, 2_000_001).astype(F32)
    x64 = x.astype(np.float64)
    exact = x64 * (1 + ERF(x64 / math.sqrt(2))) / 2
    err = np.abs(kernel_gelu(x, table) - exact) / (1 + np.abs(exact))
    print(f"  float gelu: largest error relative to 1 + |gelu| {err.max():.3e} at x = {x[err.argmax()]}")


def print_table(table: np.ndarray) -> None:
    intervals = table.shape[1]
    print(f"erf/2 by {intervals} intervals, degree {table.shape[0] - 1} (rows: highest power first):")
    for row in table:
        print("    {" + ", ".join(f"{c:.9e}f" for c in row) + "},")


def main() -> None:
    shapes = [(16, 5), (8, 6)] if len(sys.argv) < 3 else [(int(sys.argv[1]), int(sys.argv[2]))]
    for intervals, degree in shapes:
        table = fit(intervals, degree)
        print_table(table)
        check(table)


if __name__ == "__main__":
    main()
