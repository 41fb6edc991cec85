"""The indicator families, one module per kernel section.

Each section module holds a ``FAMILIES`` list filled by :meth:`Families.define`, which sits
on the family's compute function, so a family's name, description, default grid, lookback,
parameter domains and maths read as one block. To add a family, add such a block to the
section module whose kernels it uses (a new section module also goes in ``SECTIONS``);
``signals.catalog`` picks it up, and the catalogue's contract tests cover it.
"""

from __future__ import annotations

from signals.families import averages, candles, oscillators, stats, trend, volatility, volume
from signals.families.base import Family

__all__ = ["SECTIONS", "all_families"]

SECTIONS = (averages, oscillators, trend, volatility, volume, stats, candles)


def all_families() -> list[Family]:
    """Every family of every section, in section then definition order."""
    return [family for section in SECTIONS for family in section.FAMILIES]
