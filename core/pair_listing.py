"""Who lists whom in a matched pair: the pairs' ``listed`` column, a bit per side. A posting at
the match cap may not list a posting that lists it; only pairs listed by both are mutual."""

from __future__ import annotations

LISTED_LEFT, LISTED_RIGHT, LISTED_BOTH = 1, 2, 3
