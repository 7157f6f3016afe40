"""Pagination that skips the COUNT query when the first page already holds everything."""

from django.core.paginator import Page, Paginator
from django.utils.functional import cached_property


class SmallListPaginator(Paginator):
    """Most customers have one page of orders or subscriptions: counting them is a wasted query.

    The first page is fetched with one extra row; if it comes back short, its length is the count.
    """

    def __init__(self, object_list, per_page, **kwargs):
        super().__init__(object_list, per_page, **kwargs)
        self._first_rows = None

    def get_page(self, number):
        if number in (None, "", "1", 1):
            rows = list(self.object_list[: self.per_page + 1])
            if len(rows) <= self.per_page:
                self._first_rows = rows
            return Page(rows[: self.per_page], 1, self)
        return super().get_page(number)

    @cached_property
    def count(self):
        if self._first_rows is not None:
            return len(self._first_rows)
        return super().count
