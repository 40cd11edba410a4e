"""Japan's national holidays (国民の祝日) from the maintained ``holidays`` library.

It follows the Cabinet Office's list for any year, including substitute holidays
(振替休日) and the "citizens' holiday" (国民の休日) squeezed between two holidays;
nothing here is a hand-kept list. Pure computation, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from functools import cache

import holidays


@cache
def japan_holidays() -> Mapping[date, str]:
    """Every national holiday, Japanese names; years are filled in as they are asked for."""
    return holidays.country_holidays("JP", language="ja")
