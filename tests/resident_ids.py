"""Resident ID numbers as the mask-strength tests reason about them: 6 digits of area, 8 of
birth date, 3 of sequence (the last odd for men) and a check digit (GB 11643) over the rest."""

from __future__ import annotations

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def check_digit(first17: str) -> str:
    return "10X98765432"[sum(int(c) * w for c, w in zip(first17, WEIGHTS, strict=True)) % 11]
