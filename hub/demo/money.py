"""Money as exact decimals of yuan with two places, never floats."""

from __future__ import annotations

import random
from decimal import Decimal


def yuan(cents: int) -> Decimal:
    """`cents` fen as a two-place decimal of yuan (123456 -> 1234.56)."""
    return Decimal(cents).scaleb(-2)


def whole(amount: int) -> Decimal:
    return Decimal(amount * 100).scaleb(-2)


def stepped(rng: random.Random, low: int, high: int, step: int) -> Decimal:
    """A whole amount in [low, high] on a multiple of `step` yuan, as officials grant them."""
    return whole(rng.randrange(low // step, high // step + 1) * step)


def share(amount: Decimal, ratio: float) -> Decimal:
    """`ratio` of `amount`, rounded to the fen."""
    return yuan(round(int(amount * 100) * ratio))
