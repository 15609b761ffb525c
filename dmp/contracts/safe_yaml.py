"""YAML from files people edit (segment specs, ``channels.yaml``), read with limits a hostile file cannot pass.

``yaml.safe_load`` is safe against code execution, not against size: nine anchors of nine aliases
(a 500-byte "billion laughs" file) build a value that repeats ~400 million leaves; PyYAML builds it
as a shared graph in microseconds, but anything that walks it as a tree (pydantic, ``repr``) never
finishes. A list nested 2,000 levels deep raises ``RecursionError`` in the composer, and a file
saved in GBK raises ``UnicodeDecodeError``. Here every one of those is refused, before the value
is built, with a :class:`YamlRefused` whose message reads ``FILE: [FIELD: ]what is wrong; what is
allowed``:

- the file may hold at most ``max_bytes`` bytes and must be UTF-8 (a BOM is fine);
- at most ``max_aliases`` alias uses (``*name``), no alias inside the value it names;
- at most ``max_depth`` levels of nested lists / mappings, aliases counted as the values they repeat;
- at most ``max_nodes`` values once every alias is expanded (counted while composing, from the size
  of each anchored node, so nothing is ever expanded to count it);
- a key given twice in one mapping is an error (YAML silently keeps the last one).

Syntax errors, unreadable files and values PyYAML cannot construct (``2026-02-30``) raise
:class:`YamlRefused` too, so a caller catches one exception and reports one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from dmp.contracts.errors import DmpError

__all__ = [
    "MAX_ALIASES",
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "YamlRefused",
    "load_yaml_file",
    "load_yaml_text",
]

MAX_BYTES = 262_144
MAX_ALIASES = 100
MAX_DEPTH = 64
MAX_NODES = 100_000
_MERGE_TAG = "tag:yaml.org,2002:merge"
_PATH_LIMIT = 60  # characters of a field path shown in a message


class YamlRefused(DmpError):
    """A YAML file that cannot be read safely: ``FILE: [FIELD: ]what is wrong; what is allowed``.

    ``file``, ``field_path`` (where in the document, ``a.b[2]``; empty for the whole file) and
    ``problem`` are kept apart so callers with their own issue format (spec issues) can use them.
    """

    def __init__(self, file: str, problem: str, field_path: str = "") -> None:
        self.file = file
        self.problem = problem
        self.field_path = field_path
        super().__init__(f"{file}: {field_path}: {problem}" if field_path else f"{file}: {problem}")


class _Limit(Exception):
    """Raised inside the loader; :func:`load_yaml_text` turns it into :class:`YamlRefused`."""

    def __init__(self, problem: str, field_path: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.field_path = field_path


def _where(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "an unknown position"


def _shorten(text: str, limit: int = _PATH_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _twice(key: Any, first: Node, second: Node) -> str:
    return (
        f"key {_shorten(repr(key), 40)} appears twice, at line {first.start_mark.line + 1} and line "
        f"{second.start_mark.line + 1}; each key may be given once per mapping"
    )


class _Guards:
    """Counts aliases, depth and expanded size while composing nodes (mixed into a safe loader).

    ``yaml.CSafeLoader`` composes in C, where none of this can be checked, and the pure-Python
    ``SafeLoader`` takes seconds for a 256 KiB file; so libyaml's parser feeds PyYAML's Python
    composer (these methods) and safe constructor when libyaml is there (:class:`_CGuardedLoader`).
    """

    # libyaml reports a bad character's position in bytes of UTF-8, PyYAML in characters.
    positions_in_bytes = False
    max_aliases = MAX_ALIASES
    max_depth = MAX_DEPTH
    max_nodes = MAX_NODES

    def __init__(self, stream: str) -> None:
        super().__init__(stream)  # type: ignore[call-arg]
        self._start()

    def _start(self) -> None:
        self._aliases = 0
        self._path: list[str | int] = []
        # node -> (values once expanded, levels of lists / mappings), filled when the node is complete.
        self._size: dict[Node, tuple[int, int]] = {}

    def _field_path(self) -> str:
        out = ""
        for part in self._path:
            out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + part
        return _shorten(out)

    def _path_part(self, parent: Node | None, index: Any) -> str | int | None:
        if isinstance(parent, SequenceNode):
            return int(index)
        if isinstance(parent, MappingNode):
            if isinstance(index, ScalarNode):
                return str(index.value)
            return "(key)"
        return None

    def compose_node(self, parent: Node | None, index: Any) -> Node:  # type: ignore[override]
        part = self._path_part(parent, index)
        if part is not None:
            self._path.append(part)
        try:
            depth = len(self._path) + 1
            if self.check_event(yaml.AliasEvent):  # type: ignore[no-untyped-call]
                return self._alias(depth)
            if depth > self.max_depth and not self.check_event(yaml.ScalarEvent):  # type: ignore[no-untyped-call]
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise _Limit(
                    f"nested deeper than {self.max_depth} levels at {_where(mark)}; "
                    f"at most {self.max_depth} levels of lists and mappings are allowed",
                    self._field_path(),
                )
            node = super().compose_node(parent, index)  # type: ignore[no-untyped-call]
            self._measure(node)
            if isinstance(node, MappingNode):
                self._unique_keys(node)
            return node
        finally:
            if part is not None:
                self._path.pop()

    def _alias(self, depth: int) -> Node:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        self._aliases += 1
        if self._aliases > self.max_aliases:
            raise _Limit(
                f"more than {self.max_aliases} aliases (*{event.anchor} at {_where(event.start_mark)}); "
                f"at most {self.max_aliases} aliases are allowed, write the values out",
                self._field_path(),
            )
        target = self.anchors.get(event.anchor)
        if target is not None and target not in self._size:
            raise _Limit(
                f"alias *{event.anchor} at {_where(event.start_mark)} is inside the value it names; "
                "an alias may only repeat a value that is complete",
                self._field_path(),
            )
        node: Node = super().compose_node(None, None)  # type: ignore[no-untyped-call]  # undefined -> ComposerError
        levels = self._size[node][1]
        if depth - 1 + levels > self.max_depth:
            raise _Limit(
                f"alias *{event.anchor} at {_where(event.start_mark)} nests the document deeper than "
                f"{self.max_depth} levels; at most {self.max_depth} levels of lists and mappings are allowed",
                self._field_path(),
            )
        return node

    def _measure(self, node: Node) -> None:
        """Record the node's expanded size and height; refuse when it exceeds ``max_nodes``."""
        if isinstance(node, SequenceNode):
            children = [self._size[c] for c in node.value]
        elif isinstance(node, MappingNode):
            children = [self._size[n] for pair in node.value for n in pair]
        else:
            children = []
        size = 1 + sum(s for s, _ in children)
        levels = 0 if isinstance(node, ScalarNode) else 1 + max((h for _, h in children), default=0)
        self._size[node] = (size, levels)
        if size > self.max_nodes:
            raise _Limit(
                f"the value at {_where(node.start_mark)} expands to more than {self.max_nodes} values "
                f"(aliases repeat what they name); at most {self.max_nodes} values are allowed",
                self._field_path(),
            )

    def _unique_keys(self, node: MappingNode) -> None:
        """Plain keys written twice in one mapping, found while the field path is still known.

        Keys that differ in writing but not in value (``1`` and ``0x1``) are caught when
        constructing, see :meth:`construct_mapping`.
        """
        seen: dict[tuple[str, str], ScalarNode] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, ScalarNode) and key_node.tag != _MERGE_TAG:
                first = seen.setdefault((key_node.tag, key_node.value), key_node)
                if first is not key_node:
                    raise _Limit(_twice(key_node.value, first, key_node), self._field_path())

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:  # type: ignore[override]
        seen: dict[Any, Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            try:
                first = seen.setdefault(key, key_node)
            except TypeError:  # unhashable key: SafeConstructor reports it below
                continue
            if first is not key_node:
                raise _Limit(_twice(key, first, key_node), "")
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-untyped-call, no-any-return]

    def construct_object(self, node: Node, deep: bool = False) -> Any:  # type: ignore[override]
        try:
            return super().construct_object(node, deep=deep)  # type: ignore[no-untyped-call]
        except (ValueError, OverflowError) as exc:  # e.g. 2026-02-30, an int of 5,000 digits
            reason = str(exc).split(";")[0]
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"cannot read the value {_shorten(repr(node.value), 40)}: {reason}",
                node.start_mark,
            ) from None


class _PyGuardedLoader(_Guards, yaml.SafeLoader):
    """The checks on PyYAML's pure-Python parser (used when libyaml is missing)."""


if yaml.__with_libyaml__:
    from yaml._yaml import CParser

    class _CGuardedLoader(_Guards, Composer, SafeConstructor, Resolver, CParser):  # type: ignore[misc]
        """libyaml scans and parses (in C, ~5x faster); composing stays in Python, where it is checked."""

        positions_in_bytes = True

        def __init__(self, stream: str) -> None:  # CParser does not call the other initialisers
            CParser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            self._start()

    _GuardedLoader: type[_Guards] = _CGuardedLoader
else:
    _GuardedLoader = _PyGuardedLoader


def _syntax_problem(exc: yaml.YAMLError, text: str) -> str:
    if isinstance(exc, yaml.reader.ReaderError):
        in_bytes = _GuardedLoader.positions_in_bytes
        before = text.encode("utf-8")[: exc.position] if in_bytes else text[: exc.position]
        line = before.count(b"\n" if isinstance(before, bytes) else "\n") + 1
        char = exc.character if isinstance(exc.character, int) else ord(exc.character)
        return f"character U+{char:04X} at line {line} is not allowed in YAML; use printable text"
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    at = f" at {_where(mark)}" if mark is not None else ""
    if isinstance(exc, yaml.constructor.ConstructorError):
        return f"invalid value{at}: {problem}; allowed: text, numbers, dates, true/false, lists and mappings"
    return f"invalid YAML{at}: {problem}; fix the syntax (indentation, quotes, ':' after keys)"


def load_yaml_text(
    text: str,
    source: str,
    *,
    max_aliases: int = MAX_ALIASES,
    max_depth: int = MAX_DEPTH,
    max_nodes: int = MAX_NODES,
) -> object:
    """The value of one YAML document, within the limits; raises :class:`YamlRefused` naming ``source``."""
    try:
        loader = _GuardedLoader(text)  # the reader checks every character here
    except UnicodeEncodeError as exc:  # a lone surrogate: only from a str not read from a file
        raise YamlRefused(source, f"not valid text at character {exc.start}; give UTF-8 text") from None
    except yaml.YAMLError as exc:
        raise YamlRefused(source, _syntax_problem(exc, text)) from None
    loader.max_aliases, loader.max_depth, loader.max_nodes = max_aliases, max_depth, max_nodes
    try:
        return loader.get_single_data()  # type: ignore[no-untyped-call]
    except _Limit as exc:
        raise YamlRefused(source, exc.problem, exc.field_path) from None
    except yaml.YAMLError as exc:
        raise YamlRefused(source, _syntax_problem(exc, text)) from None
    finally:
        loader.dispose()  # type: ignore[no-untyped-call]


def decode_utf8(data: bytes, source: str) -> str:
    """``data`` as UTF-8 text (a leading BOM dropped); raises :class:`YamlRefused` at the first bad byte."""
    bom = b"\xef\xbb\xbf"
    skip = len(bom) if data.startswith(bom) else 0
    try:
        return data[skip:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = skip + exc.start
        line = data.count(b"\n", 0, offset) + 1
        raise YamlRefused(
            source,
            f"not UTF-8: byte 0x{data[offset]:02x} at offset {offset} (line {line}) is not valid UTF-8; "
            "save the file as UTF-8",
        ) from None


def load_yaml_file(
    path: Path,
    *,
    max_bytes: int = MAX_BYTES,
    max_aliases: int = MAX_ALIASES,
    max_depth: int = MAX_DEPTH,
    max_nodes: int = MAX_NODES,
) -> object:
    """The value of the YAML file at ``path``, read with every limit above; raises :class:`YamlRefused`.

    At most ``max_bytes + 1`` bytes are read, so a huge file (or a device named like a spec) costs nothing.
    """
    source = str(path)
    if Path(path).exists() and not Path(path).is_file():  # a FIFO would block the read forever
        raise YamlRefused(source, "not a regular file; give a YAML file")
    try:
        with Path(path).open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise YamlRefused(source, f"cannot read the file: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise YamlRefused(
            source, f"the file is larger than {max_bytes} bytes; at most {max_bytes} bytes are allowed"
        )
    text = decode_utf8(data, source)
    return load_yaml_text(text, source, max_aliases=max_aliases, max_depth=max_depth, max_nodes=max_nodes)
