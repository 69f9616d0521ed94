"""Lists and searches (RFC 7644 §3.4.2): paging, and the statements that answer them.

A SCIM client asks the same few questions over and over (``userName eq "..."`` before every
create): each statement is built once per filter shape and sort, kept, and executed with
the request's values as bound parameters. Building and keying a fresh statement costs
several times what executing a kept one does.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, Protocol

from sqlalchemy import Select, SQLColumnExpression, bindparam, func, select, true
from sqlalchemy.orm import Session

from postwarden.errors import InvalidRequest, Reason
from postwarden.scim.filters import FilterTranslator
from postwarden.scim.schemas import MAX_RESULTS

#: How many statements one resource type keeps before starting afresh.
KEPT_STATEMENTS: Final = 512


@dataclass(frozen=True)
class Query:
    """A list or search (RFC 7644 §3.4.2)."""

    filter: str | None = None
    sort_by: str | None = None
    descending: bool = False
    start_index: int = 1
    count: int = MAX_RESULTS


@dataclass(frozen=True)
class Page:
    total: int
    start_index: int
    resources: list[Any]


def page_bounds(query: Query) -> tuple[int, int]:
    """(offset, limit): ``startIndex`` below 1 is 1, ``count`` below 0 is 0, and above the
    maximum is the maximum (RFC 7644 §3.4.2.4)."""
    return max(query.start_index, 1) - 1, min(max(query.count, 0), MAX_RESULTS)


class Searchable(Protocol):
    def search(self, query: Query) -> Page: ...


def search_across(services: Sequence[Searchable], query: Query) -> Page:
    """``POST /.search`` over several resource types: the first type's matches, then the
    next's, paged as one list. A filter naming an attribute only some types have matches
    none of the others (RFC 7644 §3.4.2.1); one that no type knows is refused."""
    totals: list[int] = []
    refusals: list[InvalidRequest] = []
    for service in services:
        try:
            totals.append(service.search(replace(query, count=0)).total)
        except InvalidRequest as exc:
            if exc.reason is not Reason.SCIM_FILTER_INVALID:
                raise
            refusals.append(exc)
            totals.append(0)
    if len(refusals) == len(services):
        raise refusals[0]
    offset, wanted = page_bounds(query)
    found: list[Any] = []
    for service, total in zip(services, totals, strict=True):
        if offset < total and len(found) < wanted:
            found += service.search(replace(query, start_index=offset + 1, count=wanted - len(found))).resources
        offset = max(offset - total, 0)
    return Page(sum(totals), max(query.start_index, 1), found)


class Searcher:
    """Answers the queries of one resource type in one account (``:account_id``)."""

    def __init__(
        self,
        translator: FilterTranslator,
        columns: Callable[[], Select[Any]],
        account: SQLColumnExpression[int],
        key: SQLColumnExpression[int],
    ) -> None:
        self.translator = translator
        #: ``select(...)`` of what a page reads, before any condition
        self.columns = columns
        self.account = account
        #: the resource's row id: the order without ``sortBy``, and what is counted
        self.key = key
        self._kept: dict[Hashable, Select[Any]] = {}

    def search(self, session: Session, account_id: int, query: Query) -> tuple[int, Sequence[Any]]:
        """(totalResults, the page's rows). The page is read first: when it ends before the
        limit, its end is the total, and the count (a second pass over every match) is
        needed only for a full page or one past the end, as an exact lookup never is."""
        translation = self.translator.translate(query.filter) if query.filter else None
        condition = translation.condition if translation else true()
        shape = translation.shape if translation else None
        offset, limit = page_bounds(query)
        parameters = {"account_id": account_id, "limit": limit, "offset": offset}
        parameters |= translation.parameters if translation else {}
        sort = (query.sort_by.lower(), query.descending) if query.sort_by else None

        def page() -> Select[Any]:
            ordering: list[Any] = [self.key]
            if query.sort_by:
                ordering.insert(0, self.translator.order_by(query.sort_by, descending=query.descending))
            matching = self.columns().where(self.account == bindparam("account_id"), condition)
            return matching.order_by(*ordering).limit(bindparam("limit")).offset(bindparam("offset"))

        def count() -> Select[Any]:
            matching = select(self.key).where(self.account == bindparam("account_id"), condition).subquery()
            return select(func.count()).select_from(matching)

        # Core statements on the session's connection: the ORM has nothing to add to plain rows.
        connection = session.connection()
        rows: Sequence[Any] = (
            connection.execute(self._statement(("page", shape, sort), page), parameters).all() if limit else []
        )
        if rows and len(rows) < limit:
            return offset + len(rows), rows
        if not rows and limit and offset == 0:
            return 0, rows
        return connection.scalar(self._statement(("count", shape), count), parameters) or 0, rows

    def _statement(self, key: Hashable, build: Callable[[], Select[Any]]) -> Select[Any]:
        statement = self._kept.get(key)
        if statement is None:
            if len(self._kept) >= KEPT_STATEMENTS:
                self._kept.clear()
            statement = self._kept[key] = build()
        return statement
