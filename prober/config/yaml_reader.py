"""Reading one check file's YAML so that no file, however hostile, can exhaust the process.

A check folder is an input like any other: a daemon reloads whatever is saved there. PyYAML on its own
accepts a 489-byte "billion laughs" alias bomb (every later copy multiplies), nesting deep enough to blow
the stack, integers with thousands of digits and files of any size. This module bounds all of them before
anything is built, and reports each as one sentence with its line, never as a traceback:

- the file is at most MAX_FILE_BYTES;
- collections nest at most MAX_DEPTH deep;
- the document, with every alias expanded, holds at most MAX_VALUES values and MAX_CHARACTERS characters
  of scalars (normal anchors and merge keys stay fine; a bomb, of many values or of one long string named
  many times, is stopped after reading its events, before anything is copied);
- an alias may not refer to the node that contains it;
- integers have at most MAX_INT_DIGITS digits;
- a key appears once per mapping (PyYAML silently keeps the last one).

It uses libyaml's C parser when PyYAML has it (several times faster) and the pure-Python one otherwise.
Values are built straight from the parser's events with the checks applied as they arrive, so a
hostile document is stopped before it has cost more than its own size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "MAX_CHARACTERS",
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_INT_DIGITS",
    "MAX_VALUES",
    "YamlProblem",
    "read_yaml",
]

MAX_FILE_BYTES = 8 << 20
MAX_DEPTH = 64
MAX_VALUES = 1_000_000
MAX_CHARACTERS = 64 << 20
"""Characters of scalars (keys and values) with every alias expanded: 8 times what a file may hold. An
alias of a 1 MB string counts 1 MB each time it is named, although the reader shares one copy: later steps
(`${VAR}` interpolation, validation) may not."""
MAX_INT_DIGITS = 30

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class YamlProblem(Exception):
    """The file cannot be read as check definitions; `message` is one sentence for the user."""

    message: str

    def __str__(self) -> str:
        return self.message


def _where(mark: Any) -> str:
    return f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


class _Loader(_Base):  # type: ignore[misc]
    """The chosen SafeLoader with strict mappings and bounded integers."""


def _unique_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        if not isinstance(key_node, yaml.ScalarNode):
            raise yaml.constructor.ConstructorError(
                None, None, "a key must be a plain value, not a list or a mapping", key_node.start_mark
            )
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"the key {key!r} appears twice in one mapping", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep)  # type: ignore[no-any-return]


def _bounded_int(loader: _Loader, node: yaml.ScalarNode) -> int:
    text = str(node.value)
    digits = sum(ch.isdigit() for ch in text) if len(text) > MAX_INT_DIGITS else 0
    if digits > MAX_INT_DIGITS:
        raise yaml.constructor.ConstructorError(
            None, None, f"a number with {digits} digits is too large (at most {MAX_INT_DIGITS})", node.start_mark
        )
    return yaml.constructor.SafeConstructor.construct_yaml_int(loader, node)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)
_Loader.add_constructor("tag:yaml.org,2002:int", _bounded_int)

_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
_PLAIN_COLLECTION_TAGS = (None, "!", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map")
_MERGE = object()
"""Stands for a `<<` key while its mapping is being built."""


class _Frame:
    """One list or mapping being built, with what the size and alias checks need."""

    __slots__ = ("anchor", "characters", "key", "merges", "owned", "size", "value", "wants_key")

    def __init__(self, anchor: str | None, value: list[Any] | dict[Any, Any]) -> None:
        self.anchor = anchor
        self.value = value
        self.size = 1
        self.characters = 0
        self.wants_key = isinstance(value, dict)
        self.key: Any = None
        self.merges: list[tuple[Any, Any]] = []
        self.owned: set[Any] = set()


_IMPLICIT: dict[Any, list[tuple[str, Any]]] = _Loader.yaml_implicit_resolvers
_WILDCARD = _IMPLICIT.get(None, [])


def _resolve(value: str) -> str:
    """The tag of a plain scalar: PyYAML's Resolver.resolve for SafeLoader, without its per-call overhead."""
    for tag, pattern in _IMPLICIT.get(value[0] if value else "", ()):
        if pattern.match(value):
            return tag
    for tag, pattern in _WILDCARD:
        if pattern.match(value):
            return tag
    return _STR_TAG


def _scalar(loader: _Loader, event: Any) -> Any:
    tag = event.tag
    if tag is None or tag == "!":
        if event.implicit[0] and not _Loader.yaml_path_resolvers:
            tag = _resolve(event.value)
        else:
            tag = loader.resolve(yaml.ScalarNode, event.value, event.implicit)
    if tag == _STR_TAG:
        return event.value
    if tag == _MERGE_TAG:
        return _MERGE
    construct = loader.yaml_constructors.get(tag)
    if construct is None:
        raise YamlProblem(f"the tag {event.tag} is not supported in check files{_where(event.start_mark)}")
    node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
    return construct(loader, node)


def _merge_sources(value: Any, mark: Any) -> list[dict[Any, Any]]:
    sources = value if isinstance(value, list) else [value]
    if not all(isinstance(source, dict) for source in sources):
        raise YamlProblem(f"a merge key (<<) needs a mapping or a list of mappings{_where(mark)}")
    return sources


def _close_mapping(frame: _Frame) -> None:
    """Apply `<<` merges as PyYAML does: the mapping's own keys win, then the first source listed."""
    if not frame.merges:
        return
    own = frame.value
    assert isinstance(own, dict)
    merged: dict[Any, Any] = {}
    for value, mark in frame.merges:
        for source in _merge_sources(value, mark):
            for key, item in source.items():
                merged.setdefault(key, item)
    merged.update(own)
    own.clear()
    own.update(merged)


def _add(frame: _Frame, value: Any, mark: Any, is_collection: bool) -> None:
    container = frame.value
    if isinstance(container, list):
        container.append(value)
        return
    if frame.wants_key:
        if is_collection:
            raise YamlProblem(f"invalid YAML{_where(mark)}: a key must be a plain value, not a list or a mapping")
        try:
            hash(value)
        except TypeError:
            raise YamlProblem(
                f"invalid YAML{_where(mark)}: a key must be a plain value, not a list or a mapping"
            ) from None
        if value is not _MERGE and value in frame.owned:
            raise YamlProblem(f"invalid YAML{_where(mark)}: the key {value!r} appears twice in one mapping")
        frame.key = value
        frame.wants_key = False
        return
    if frame.key is _MERGE:
        frame.merges.append((value, mark))
    else:
        frame.owned.add(frame.key)
        container[frame.key] = value
    frame.wants_key = True


def _build(text: str) -> Any:
    """Plain Python values straight from the parser's events, checked as they arrive.

    Building from events (not PyYAML's node graph) is both the safety check and the fast path: nesting,
    the expanded size and self-reference are known before anything is copied, and there is no second pass.
    Every node counts one value, and a scalar its characters; an alias counts the expanded size of what it
    names, kept per anchor, so `*lol9` of a billion-laughs file is known to be 10^9 values (and a 1 MB
    string named 1,000 times 10^9 characters) without expanding it. Aliases share the anchored object, as
    PyYAML does.
    """
    loader = _Loader(text)
    try:
        expanded = characters = 0
        documents = 0
        root: Any = None
        anchors: dict[str, tuple[Any, int, int]] = {}
        stack: list[_Frame] = []
        while loader.check_event():
            event = loader.get_event()
            kind = type(event)
            if kind is yaml.ScalarEvent:
                value, size, is_collection = _scalar(loader, event), 1, False
                chars = len(event.value)
                if event.anchor is not None:
                    anchors[event.anchor] = (value, 1, chars)
            elif kind is yaml.AliasEvent:
                found = anchors.get(event.anchor or "")
                if found is None:
                    where = _where(event.start_mark)
                    if any(frame.anchor == event.anchor for frame in stack):
                        raise YamlProblem(f"the alias *{event.anchor}{where} refers to a node that contains it")
                    raise YamlProblem(f"the alias *{event.anchor}{where} names no anchor defined before it")
                value, size, chars = found
                is_collection = isinstance(value, list | dict)
            elif kind is yaml.SequenceStartEvent or kind is yaml.MappingStartEvent:
                if len(stack) >= MAX_DEPTH:
                    raise YamlProblem(f"lists and mappings nest more than {MAX_DEPTH} deep{_where(event.start_mark)}")
                if event.tag not in _PLAIN_COLLECTION_TAGS:
                    raise YamlProblem(f"the tag {event.tag} is not supported in check files{_where(event.start_mark)}")
                if stack and stack[-1].wants_key:
                    raise YamlProblem(
                        f"invalid YAML{_where(event.start_mark)}: a key must be a plain value, not a list or a mapping"
                    )
                container: list[Any] | dict[Any, Any] = [] if kind is yaml.SequenceStartEvent else {}
                stack.append(_Frame(event.anchor, container))
                expanded += 1
                continue
            elif kind is yaml.SequenceEndEvent or kind is yaml.MappingEndEvent:
                frame = stack.pop()
                if isinstance(frame.value, dict):
                    _close_mapping(frame)
                value, size = frame.value, frame.size
                if frame.anchor is not None:
                    anchors[frame.anchor] = (value, size, frame.characters)
                if stack:
                    stack[-1].size += size
                    stack[-1].characters += frame.characters
                    _add(stack[-1], value, event.start_mark, True)
                else:
                    root = value
                continue
            elif kind is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise YamlProblem(
                        f"a check file holds one YAML document, found a second one{_where(event.start_mark)}"
                    )
                continue
            else:
                continue
            expanded += size
            characters += chars
            if expanded > MAX_VALUES:
                raise YamlProblem(
                    f"with its aliases expanded, the file holds more than {MAX_VALUES:,} values"
                    f"{_where(event.start_mark)} (an alias bomb?); write the values out or use fewer aliases"
                )
            if characters > MAX_CHARACTERS:
                raise YamlProblem(
                    f"with its aliases expanded, the file holds more than {MAX_CHARACTERS:,} characters"
                    f"{_where(event.start_mark)} (an alias bomb of a long string?); name long strings fewer times"
                )
            if stack:
                stack[-1].size += size
                stack[-1].characters += chars
                _add(stack[-1], value, event.start_mark, is_collection)
            else:
                root = value
        return root
    except yaml.YAMLError as exc:
        raise _as_problem(exc) from None
    except (ValueError, OverflowError, TypeError) as exc:
        raise YamlProblem(f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()


def _as_problem(exc: yaml.YAMLError) -> YamlProblem:
    mark = getattr(exc, "problem_mark", None)
    reason = getattr(exc, "problem", None) or str(exc)
    return YamlProblem(f"invalid YAML{_where(mark)}: {reason}")


def read_yaml(path: Path) -> Any:
    """The document in `path` as plain Python values (None when empty), or raise YamlProblem."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise YamlProblem(f"cannot read the file: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise YamlProblem(f"the file is larger than {MAX_FILE_BYTES >> 20} MiB; split it into several files")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise YamlProblem(f"the file is not UTF-8 text (byte {exc.start}: {data[exc.start]:#04x})") from None
    if "\x00" in text:
        raise YamlProblem(f"the file is not text: it holds a NUL byte at offset {text.index(chr(0))}")
    return _build(text)
