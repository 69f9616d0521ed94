"""SCIM filters (RFC 7644 §3.4.2.2) turned into SQL: scim2-models parses the expression, and
this module maps each attribute it names onto a column, so that the database answers over
its indexes. An attribute that is not mapped is an ``invalidFilter`` error, never ignored:
ignoring it would widen the result (``nickName eq "x"`` would match everyone).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Final

from scim2_models import ScimFilter
from scim2_models.exceptions import SCIMException
from scim2_models.path import (
    AttrPath,
    CompareOperator,
    Comparison,
    FilterNode,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ValuePath,
)
from sqlalchemy import Boolean, ColumnElement, SQLColumnExpression, and_, bindparam, func, not_, or_, true
from sqlalchemy.sql.elements import BindParameter

from postwarden.db import UTCDateTime
from postwarden.errors import InvalidRequest, Reason


class Kind(Enum):
    STRING = "string"
    BOOLEAN = "boolean"
    #: A boolean computed from other columns (``active``): always present.
    FLAG = "flag"
    DATETIME = "dateTime"
    #: A resource id: a string on the wire, an integer column here.
    ID = "id"


@dataclass(frozen=True)
class Column:
    """One filterable (and sortable) attribute."""

    expression: SQLColumnExpression[Any]
    kind: Kind = Kind.STRING
    #: Compared without regard to case (RFC 7643 ``caseExact: false``).
    case_insensitive: bool = True
    #: The column already holds the lower-cased value (indexed as such).
    lowered: bool = False
    #: An id's text before its number (``g`` of a group's ``g12``).
    id_prefix: str = ""


@dataclass(frozen=True)
class Values:
    """A multi-valued attribute kept in rows of its own (``emails``, ``members``)."""

    #: Wraps a condition on one of its rows into "some row of this resource matches".
    any_row: Callable[[ColumnElement[bool]], ColumnElement[bool]]
    sub_attributes: Mapping[str, Column]
    #: What ``emails eq "x"`` compares: RFC 7644 §3.4.2.2 reads it as ``emails.value``.
    default: str = "value"


Attributes = Mapping[str, Column | Values]


def _invalid(message: str) -> InvalidRequest:
    return InvalidRequest(Reason.SCIM_FILTER_INVALID, message)


@dataclass(frozen=True)
class Translation:
    """A filter as SQL: ``condition`` holds bound parameters named ``p0``, ``p1``..., whose
    values are ``parameters``; ``shape`` is the filter less its values, the same for every
    filter that translates to the same statement (which can then be built once and kept)."""

    condition: ColumnElement[bool]
    parameters: dict[str, Any]
    shape: Hashable


class _Binder:
    """Hands out the bound parameters of one translation."""

    def __init__(self) -> None:
        self.parameters: dict[str, Any] = {}

    def __call__(self, value: Any, type_: Any = None) -> BindParameter[Any]:
        name = f"p{len(self.parameters)}"
        self.parameters[name] = value
        return bindparam(name, value, type_=type_)


def parse(text: str) -> FilterNode:
    try:
        return ScimFilter(text).ast
    except SCIMException as exc:
        raise _invalid(f"The filter {text!r} is not valid: {exc}.") from exc
    except ValueError as exc:
        raise _invalid(f"The filter {text!r} is not valid: {exc}.") from exc


class FilterTranslator:
    """Translates the filters of one resource type.

    ``attributes`` is keyed by lower-cased names: ``username``, ``name.givenname``,
    ``emails``; ``schemas`` are the URNs that may qualify them (lower-cased).
    """

    def __init__(self, attributes: Attributes, schemas: Mapping[str, frozenset[str]]) -> None:
        self.attributes = attributes
        #: lower-cased URN -> the attribute keys it may qualify
        self.schemas = schemas

    def translate(self, text: str) -> Translation:
        node = parse(text)
        binder = _Binder()
        condition = self._node(node, self.attributes, binder)
        return Translation(condition, binder.parameters, _shape(node))

    def order_by(self, name: str, *, descending: bool) -> ColumnElement[Any]:
        """The ordering ``sortBy`` asks for (RFC 7644 §3.4.2.3): without regard to case where
        the attribute has none, resources without the attribute last (first when descending).
        Multi-valued attributes do not sort."""
        found = self._lookup(_attr_path(name), self.attributes)
        if isinstance(found, Values):
            raise InvalidRequest(Reason.SCIM_VALUE_INVALID, f"sortBy cannot name the multi-valued attribute {name!r}.")
        key: SQLColumnExpression[Any] = found.expression
        if found.kind is Kind.STRING and found.case_insensitive and not found.lowered:
            key = func.lower(key)
        return key.desc().nulls_first() if descending else key.asc().nulls_last()

    def _lookup(self, path: AttrPath, attributes: Attributes) -> Column | Values:
        key = path.attr.lower() + (f".{path.sub_attr.lower()}" if path.sub_attr else "")
        if path.uri is not None:
            allowed = self.schemas.get(path.uri.lower())
            if allowed is None or (path.attr.lower() not in allowed and key not in allowed):
                raise _invalid(f"The attribute {path} is not one this service filters on.")
        found = attributes.get(key)
        if found is None and path.sub_attr:
            whole = attributes.get(path.attr.lower())
            if isinstance(whole, Values) and path.sub_attr.lower() in whole.sub_attributes:
                return whole
        if found is None:
            raise _invalid(f"The attribute {path} is not one this service filters on.")
        return found

    def _node(self, node: FilterNode, attributes: Attributes, bind: _Binder) -> ColumnElement[bool]:
        if isinstance(node, LogicalExpr):
            terms = [self._node(term, attributes, bind) for term in node.terms]
            return and_(*terms) if node.op is LogicalOperator.and_ else or_(*terms)
        if isinstance(node, Not):
            return not_(self._node(node.expr, attributes, bind))
        if isinstance(node, Present):
            return self._present(node.attr_path, attributes)
        if isinstance(node, Comparison):
            return self._comparison(node, attributes, bind)
        if isinstance(node, ValuePath):
            values = self._lookup(node.attr_path, attributes)
            if not isinstance(values, Values):
                raise _invalid(f"{node.attr_path} is not multi-valued: it takes no [filter].")
            inner = self._node(node.val_filter, values.sub_attributes, bind)
            if node.sub_attr:
                inner = and_(inner, _present(_sub(values, node.sub_attr)))
            return values.any_row(inner)
        raise _invalid(f"Unsupported filter expression: {node}.")

    def _present(self, path: AttrPath, attributes: Attributes) -> ColumnElement[bool]:
        found = self._lookup(path, attributes)
        if isinstance(found, Values):
            if path.sub_attr:
                return found.any_row(_present(_sub(found, path.sub_attr)))
            return found.any_row(true())
        return _present(found)

    def _comparison(self, node: Comparison, attributes: Attributes, bind: _Binder) -> ColumnElement[bool]:
        found = self._lookup(node.attr_path, attributes)
        if isinstance(found, Values):
            column = _sub(found, node.attr_path.sub_attr or found.default)
            return found.any_row(compare(column, node.op, node.value, str(node.attr_path), bind))
        return compare(found, node.op, node.value, str(node.attr_path), bind)


def _shape(node: FilterNode) -> Hashable:
    """The filter's structure, with each compared value reduced to what decides its SQL
    (null or not): filters of one shape translate to one statement."""
    if isinstance(node, LogicalExpr):
        return (node.op.value, tuple(_shape(term) for term in node.terms))
    if isinstance(node, Not):
        return ("not", _shape(node.expr))
    if isinstance(node, Present):
        return ("pr", str(node.attr_path).lower())
    if isinstance(node, Comparison):
        return (node.op.value, str(node.attr_path).lower(), node.value is None)
    if isinstance(node, ValuePath):
        return ("[]", str(node.attr_path).lower(), _shape(node.val_filter), (node.sub_attr or "").lower())
    return ("?", str(node))


def _attr_path(name: str) -> AttrPath:
    node = parse(f"{name} pr")
    if not isinstance(node, Present):
        raise InvalidRequest(Reason.SCIM_VALUE_INVALID, f"{name!r} is not an attribute name.")
    return node.attr_path


def _sub(values: Values, name: str) -> Column:
    column = values.sub_attributes.get(name.lower())
    if column is None:
        raise _invalid(f"The sub-attribute {name!r} is not one this service filters on.")
    return column


def _present(column: Column) -> ColumnElement[bool]:
    if column.kind is Kind.FLAG:
        return true()
    if column.kind is Kind.STRING:
        return and_(column.expression.is_not(None), column.expression != "")
    return column.expression.is_not(None)


_TEXT_MATCH = {CompareOperator.co, CompareOperator.sw, CompareOperator.ew}


def compare(column: Column, op: CompareOperator, value: Any, name: str, bind: _Binder) -> ColumnElement[bool]:
    """One comparison, its value bound. A missing value equals nothing and differs from
    everything, so that ``not (x eq "a")`` matches resources without ``x``, as RFC 7644 reads it."""
    if value is None:
        if op is CompareOperator.eq:
            return not_(_present(column))
        if op is CompareOperator.ne:
            return _present(column)
        raise _invalid(f"{name} {op.value} null: only eq and ne compare with null.")
    matched: ColumnElement[bool]
    if column.kind in (Kind.BOOLEAN, Kind.FLAG):
        flag = _boolean(value, name)
        if op not in (CompareOperator.eq, CompareOperator.ne):
            raise _invalid(f"{name} is a boolean: only eq, ne and pr apply to it.")
        if column.kind is Kind.FLAG:
            matched = column.expression == bind(flag, Boolean())
        else:
            matched = and_(column.expression.is_not(None), column.expression == bind(flag))
        return matched if op is CompareOperator.eq else not_(matched)
    if column.kind is Kind.ID:
        if op not in (CompareOperator.eq, CompareOperator.ne):
            raise _invalid(f"{name} is an identifier: only eq, ne and pr apply to it.")
        number = parse_id(str(value), column.id_prefix)
        matched = column.expression == bind(number if number is not None else _NO_ROW)
        return matched if op is CompareOperator.eq else not_(matched)
    target: SQLColumnExpression[Any] = column.expression
    if column.kind is Kind.DATETIME:
        if op in _TEXT_MATCH:
            raise _invalid(f"{name} is a dateTime: {op.value} does not apply to it.")
        operand: Any = _datetime(value, name)
    else:
        if not isinstance(value, str):
            raise _invalid(f"{name} is a string: compare it with a quoted value.")
        operand = value.lower() if column.case_insensitive else value
        if column.case_insensitive and not column.lowered:
            target = func.lower(target)
    present = column.expression.is_not(None)
    if op in _TEXT_MATCH:
        escaped = operand.replace("/", "//").replace("%", "/%").replace("_", "/_")
        pattern = {CompareOperator.co: f"%{escaped}%", CompareOperator.sw: f"{escaped}%"}.get(op, f"%{escaped}")
        return and_(present, target.like(bind(pattern), escape="/"))
    # A timestamp is bound as the column stores it (SQLite compares its text).
    parameter = bind(operand, UTCDateTime() if column.kind is Kind.DATETIME else None)
    if op is CompareOperator.eq:
        return and_(present, target == parameter)
    if op is CompareOperator.ne:
        return not_(and_(present, target == parameter))
    if op is CompareOperator.gt:
        return and_(present, target > parameter)
    if op is CompareOperator.ge:
        return and_(present, target >= parameter)
    if op is CompareOperator.lt:
        return and_(present, target < parameter)
    return and_(present, target <= parameter)


#: An id no row has: what a malformed id compares with (it equals nothing, differs from all).
_NO_ROW: Final = -1


def parse_id(text: str, prefix: str = "") -> int | None:
    """The row id in a resource id, or None when it names no row."""
    if prefix:
        if not text.startswith(prefix):
            return None
        text = text[len(prefix) :]
    if text.isascii() and text.isdigit() and len(text) < 11 and 0 < int(text) < 2**31:
        return int(text)
    return None


def _boolean(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):  # Entra's "True" and "False"
        return value.lower() == "true"
    raise _invalid(f"{name} is a boolean: compare it with true or false.")


def _datetime(value: Any, name: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError as exc:
            raise _invalid(f"{name} is a dateTime: {value!r} is not one (use 2026-01-31T12:00:00Z).") from exc
    else:
        raise _invalid(f"{name} is a dateTime: compare it with a quoted timestamp.")
    if moment.tzinfo is None:
        raise _invalid(f"{name}: give the timestamp's UTC offset (2026-01-31T12:00:00Z).")
    return moment
