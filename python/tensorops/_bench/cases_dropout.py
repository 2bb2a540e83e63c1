"""Dropout in training mode on 16M elements: one read, one write, and a random draw per
element. Masks differ between libraries, so only shapes are cross-checked."""
from __future__ import annotations

from .case import Case, op, randn

FAMILY = "dropout"

CASES = [
    Case(
        name="dropout_p0.5_16M",
        family=FAMILY,
        setup=lambda dtype: (randn((4096, 4096), dtype),),
        tensorops=op("nn.functional.dropout", p=0.5, training=True),
        torch=op("nn.functional.dropout", p=0.5, training=True),
        bytes_moved=lambda inputs: 2 * inputs[0].nbytes,
        random=True,
    ),
]
