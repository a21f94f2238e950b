"""A changelist paginator that counts no further than it lets anyone page."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.utils.functional import cached_property

# Pages reach the newest 10,000 matching events; filters and search narrow further.
COUNT_LIMIT = 10_000


class LimitedCountPaginator(Paginator):
    """Counts at most COUNT_LIMIT rows, so no page costs a full count or a deep offset.

    A COUNT(*) over a million events, and an OFFSET near the last of them, each
    read the whole table; counting up to a limit reads at most that many index
    entries, and the last page is then never deeper than the limit.
    """

    count_limit = COUNT_LIMIT

    @cached_property
    def count(self) -> int:
        return min(self._counted, self.count_limit)

    @cached_property
    def has_more(self) -> bool:
        """True when more rows match than the pages reach."""
        return self._counted > self.count_limit

    @cached_property
    def _counted(self) -> int:
        return self.object_list[: self.count_limit + 1].count()
