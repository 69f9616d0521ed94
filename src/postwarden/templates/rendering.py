"""Postmark's template language, a Mustache dialect (Postmark's own engine is Mustachio):
parsing with the line and character of every mistake, rendering, and the model that a
template's names suggest.

    {{name}}  {{a.b.c}}          a value; HTML-escaped when rendering an HTML body
    {{{name}}}  {{& name}}       a value, never escaped
    {{#name}}...{{/name}}        shown when the value is truthy; a list repeats it per item,
                                 an object becomes the scope of the names inside
    {{^name}}...{{/name}}        shown when the value is falsy or missing
    {{#each list}}...{{/each}}   repeated per item; {{this}} and {{.}} are the item
    {{! comment }}               nothing
    {{{ @content }}}             in a layout: where the template using it goes

A name is looked up in the innermost scope that has it, then outwards; a missing name
renders as nothing. Whitespace is allowed inside the braces.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any, Final, Literal

#: The name a layout's placeholder for its template's content goes by.
CONTENT: Final = "@content"
#: How many items a list gets in a suggested model.
SUGGESTED_ITEMS: Final = 3
_NAME: Final = re.compile(r"\.|[\w@$-]+(\.[\w@$-]+)*")


class TemplateSyntaxError(ValueError):
    """Content that does not parse; ``line`` and ``character`` are 1-based."""

    def __init__(self, message: str, line: int, character: int) -> None:
        super().__init__(f"{message} (line {line}, character {character})")
        self.message = message
        self.line = line
        self.character = character


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Variable:
    name: str
    escaped: bool
    line: int
    character: int


@dataclass(frozen=True)
class Section:
    name: str
    kind: Literal["section", "inverted", "each"]
    children: tuple[Node, ...]


Node = Text | Variable | Section


@dataclass
class _Open:
    """A section whose closing tag is still to come."""

    name: str
    kind: Literal["section", "inverted", "each"]
    line: int
    character: int
    children: list[Node] = field(default_factory=list)


def parse(source: str) -> tuple[Node, ...]:
    root: list[Node] = []
    opened: list[_Open] = []
    position = 0
    while (start := source.find("{{", position)) >= 0:
        siblings = opened[-1].children if opened else root
        if start > position:
            siblings.append(Text(source[position:start]))
        line, character = _where(source, start)
        raw = source.startswith("{{{", start)
        opener, closer = ("{{{", "}}}") if raw else ("{{", "}}")
        end = source.find(closer, start + len(opener))
        if end < 0:
            raise TemplateSyntaxError(f"'{opener}' is never closed with '{closer}'", line, character)
        position = end + len(closer)
        inner = source[start + len(opener) : end].strip()
        if raw:
            siblings.append(Variable(_name(inner, line, character), False, line, character))
            continue
        sigil, rest = inner[:1], inner[1:].strip()
        if sigil == "!":
            continue
        if sigil == "&":
            siblings.append(Variable(_name(rest, line, character), False, line, character))
        elif sigil in ("#", "^"):
            opened.append(_opening(sigil, rest, line, character))
        elif sigil == "/":
            closed = _closing(opened, rest, line, character)
            (opened[-1].children if opened else root).append(Section(closed.name, closed.kind, tuple(closed.children)))
        else:
            siblings.append(Variable(_name(inner, line, character), True, line, character))
    if opened:
        unclosed = opened[-1]
        closing = "each" if unclosed.kind == "each" else unclosed.name
        raise TemplateSyntaxError(
            f"The section '{unclosed.name}' is never closed with '{{{{/{closing}}}}}'",
            unclosed.line,
            unclosed.character,
        )
    if position < len(source):
        root.append(Text(source[position:]))
    return tuple(root)


def _where(source: str, offset: int) -> tuple[int, int]:
    line_start = source.rfind("\n", 0, offset) + 1
    return source.count("\n", 0, offset) + 1, offset - line_start + 1


def _name(text: str, line: int, character: int) -> str:
    if not text:
        raise TemplateSyntaxError("An empty tag names no value", line, character)
    if not _NAME.fullmatch(text):
        raise TemplateSyntaxError(
            f"'{text}' is not a name: use letters, digits, '_', '-' and dots between names", line, character
        )
    return text


def _opening(sigil: str, rest: str, line: int, character: int) -> _Open:
    words = rest.split(None, 1)
    if sigil == "#" and words[:1] == ["each"]:
        if len(words) < 2:
            raise TemplateSyntaxError("'{{#each}}' needs the name of a list: {{#each items}}", line, character)
        return _Open(_name(words[1], line, character), "each", line, character)
    kind: Literal["section", "inverted"] = "section" if sigil == "#" else "inverted"
    return _Open(_name(rest, line, character), kind, line, character)


def _closing(opened: list[_Open], rest: str, line: int, character: int) -> _Open:
    if not opened:
        raise TemplateSyntaxError(f"'{{{{/{rest}}}}}' closes a section that was never opened", line, character)
    innermost = opened[-1]
    expected = "each" if innermost.kind == "each" else innermost.name
    if rest != expected:
        raise TemplateSyntaxError(
            f"'{{{{/{rest}}}}}' does not close the open section '{innermost.name}': close it with "
            f"'{{{{/{expected}}}}}' first",
            line,
            character,
        )
    return opened.pop()


# rendering


def render(nodes: Sequence[Node], model: Mapping[str, Any], *, html: bool, content: str | None = None) -> str:
    """``html`` escapes ``{{name}}`` values; ``content`` fills a layout's ``{{{ @content }}}``."""
    return "".join(_render(nodes, [model], html, content))


def _render(nodes: Sequence[Node], scopes: list[Any], html: bool, content: str | None) -> Iterator[str]:
    for node in nodes:
        if isinstance(node, Text):
            yield node.text
        elif isinstance(node, Variable):
            if node.name == CONTENT and not node.escaped and content is not None:
                yield content
                continue
            text = _text(_lookup(scopes, node.name))
            yield escape(text) if html and node.escaped else text
        else:
            value = _lookup(scopes, node.name)
            if node.kind == "inverted":
                if not _truthy(value):
                    yield from _render(node.children, scopes, html, content)
                continue
            items = value if isinstance(value, list) else [value] if _truthy(value) else []
            for item in items:
                yield from _render(node.children, [*scopes, item], html, content)


def _lookup(scopes: list[Any], name: str) -> Any:
    if name in (".", "this"):
        return scopes[-1]
    first, *rest = name.split(".")
    if first == "this":
        value = scopes[-1]
    else:
        holder = next((s for s in reversed(scopes) if isinstance(s, Mapping) and first in s), None)
        if holder is None:
            return None
        value = holder[first]
    for part in rest:
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _truthy(value: Any) -> bool:
    if isinstance(value, (str, list)):
        return len(value) > 0
    if isinstance(value, (bool, int, float)):
        return bool(value)
    return value is not None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def content_placeholders(nodes: Sequence[Node]) -> list[Variable]:
    """Every ``{{{ @content }}}`` of a layout, in order."""
    found: list[Variable] = []
    for node in nodes:
        if isinstance(node, Variable) and node.name == CONTENT and not node.escaped:
            found.append(node)
        elif isinstance(node, Section):
            found.extend(content_placeholders(node.children))
    return found


# the suggested model


@dataclass
class _Slot:
    """What the content needs of one name: the names under it, and whether it is a list."""

    fields: dict[str, _Slot] = field(default_factory=dict)
    repeated: bool = False


def suggest_model(*contents: Sequence[Node]) -> dict[str, Any]:
    """A model with every name the contents use, shaped as they use it: objects for dotted
    names and sections, lists for each-blocks, and ``<name>_Value`` for each value."""
    root = _Slot()
    for nodes in contents:
        _collect(nodes, root)
    return {name: _example(name, slot) for name, slot in root.fields.items()}


def _collect(nodes: Sequence[Node], scope: _Slot) -> None:
    for node in nodes:
        if isinstance(node, Variable):
            _slot(scope, node.name)
        elif isinstance(node, Section):
            slot = _slot(scope, node.name)
            if node.kind == "inverted" or slot is None:
                _collect(node.children, scope)  # the scope inside is the one outside
                continue
            slot.repeated = slot.repeated or node.kind == "each"
            _collect(node.children, slot)


def _slot(scope: _Slot, name: str) -> _Slot | None:
    """The slot a name fills; None for the scope itself and for ``@`` names."""
    parts = [part for part in name.split(".") if part]
    if parts[:1] == ["this"]:
        parts = parts[1:]
    if not parts or parts[0].startswith("@"):
        return None
    slot = scope
    for part in parts:
        slot = slot.fields.setdefault(part, _Slot())
    return slot


def _example(name: str, slot: _Slot) -> Any:
    value: Any = {key: _example(key, inner) for key, inner in slot.fields.items()} if slot.fields else f"{name}_Value"
    return [value] * SUGGESTED_ITEMS if slot.repeated else value
