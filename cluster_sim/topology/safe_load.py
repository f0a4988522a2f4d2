"""Reading configuration files at the input boundary, with hard limits.

Experiment and topology files are small, hand-written YAML (or TOML). Everything here refuses
what such a file cannot legitimately be, before it costs memory or time:

* not a regular file (a FIFO, ``/dev/zero``, a directory), an over-long or NUL-containing path;
* more than :data:`MAX_FILE_BYTES` bytes, or not UTF-8 (a byte-order mark is fine);
* YAML nested deeper than :data:`MAX_DEPTH` levels, expanding to more than :data:`MAX_NODES`
  nodes once aliases are followed (the "billion laughs" bomb), recursive aliases, integers of
  more than :data:`MAX_INT_DIGITS` digits, duplicate mapping keys and any tag outside the safe
  schema (``!!python/object``...).

Problems are :class:`InputProblem` (what, detail, 1-based line); callers turn them into their
own one-line :class:`~cluster_sim.errors.ClusterSimError` naming the file.

>>> parse_yaml("a: [1, 2]\\nb: {c: x}\\n")
{'a': [1, 2], 'b': {'c': 'x'}}
>>> parse_yaml("a: &x [1]\\nb: &x2 [*x, *x]\\n")["b"]
[[1], [1]]
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = ["MAX_DEPTH", "MAX_FILE_BYTES", "MAX_INT_DIGITS", "MAX_NODES", "MAX_PATH_CHARS",
           "InputProblem", "check_path_text", "check_tree", "parse_toml", "parse_yaml", "printable",
           "read_text"]

MAX_FILE_BYTES = 4 * 2**20
MAX_DEPTH = 64
MAX_NODES = 200_000
MAX_INT_DIGITS = 30
MAX_PATH_CHARS = 1024
MAX_NAME_CHARS = 255

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class InputProblem(Exception):
    """Why a file or text was refused: ``what`` (e.g. "invalid YAML"), ``detail``, ``line``."""

    def __init__(self, what: str, detail: str = "", line: int | None = None) -> None:
        super().__init__(what, detail, line)
        self.what, self.detail, self.line = what, detail, line

    def format(self, where: str) -> str:
        """``where:line: what: detail`` on one line."""
        loc = f"{where}:{self.line}" if self.line is not None else where
        return f"{loc}: {self.what}" + (f": {self.detail}" if self.detail else "")


def printable(text: str) -> str:
    """``text`` with every non-printable character escaped (``\\r``, ``\\x1e``...), so a message
    that echoes user input (a key, a value, a file name) stays on one line."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def check_path_text(path: str | os.PathLike[str]) -> None:
    """Refuse a path no file system would accept (NUL byte, over-long path or component)."""
    text = os.fspath(path)
    if "\0" in text:
        raise InputProblem("invalid path", "contains a NUL byte")
    if len(text) > MAX_PATH_CHARS:
        raise InputProblem("invalid path", f"longer than {MAX_PATH_CHARS} characters")
    longest = max((len(part) for part in Path(text).parts), default=0)
    if longest > MAX_NAME_CHARS:
        raise InputProblem("invalid path", f"a name is longer than {MAX_NAME_CHARS} characters")


def read_text(path: str | os.PathLike[str], max_bytes: int = MAX_FILE_BYTES) -> str:
    """The UTF-8 text of a regular file of at most ``max_bytes`` bytes (BOM dropped).

    Raises
    ------
    InputProblem
        No such file, not a regular file, unreadable, too large, or not UTF-8 (with the line).
    """
    check_path_text(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputProblem("no such file") from None
    except OSError as exc:
        raise InputProblem("cannot read", exc.strerror or type(exc).__name__) from None
    if not stat.S_ISREG(st.st_mode):
        raise InputProblem("not a regular file")
    if st.st_size > max_bytes:
        raise InputProblem("file too large", f"{st.st_size:,} bytes; the limit is {max_bytes:,}")
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise InputProblem("cannot read", exc.strerror or type(exc).__name__) from None
    if len(data) > max_bytes:
        raise InputProblem("file too large", f"the limit is {max_bytes:,} bytes")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputProblem("not UTF-8 text", f"byte 0x{data[exc.start]:02x} (save the file as UTF-8)",
                           line) from None


class _Loader(yaml.SafeLoader):
    """SafeLoader with depth, expanded-size, alias and integer limits and no duplicate keys."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._shape: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded size, height)

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        mark = self.peek_event().start_mark
        if self.check_event(yaml.AliasEvent):
            node = super().compose_node(parent, index)
            if id(node) not in self._shape:  # an alias to a node still being composed: a cycle
                raise yaml.MarkedYAMLError(problem="recursive alias (an anchor used inside itself)",
                                           problem_mark=mark)
            return node
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.MarkedYAMLError(problem=f"nested deeper than {MAX_DEPTH} levels",
                                           problem_mark=mark)
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if node is None:  # pragma: no cover - only at the end of the stream
            return None
        if isinstance(node, SequenceNode):
            kids = [self._shape[id(c)] for c in node.value]
        elif isinstance(node, MappingNode):
            kids = [self._shape[id(n)] for kv in node.value for n in kv]
        else:
            kids = []
        size = 1 + sum(k[0] for k in kids)
        height = 1 + max((k[1] for k in kids), default=0)
        if size > MAX_NODES:
            raise yaml.MarkedYAMLError(problem=f"expands to more than {MAX_NODES:,} values "
                                       "(aliases included)", problem_mark=mark)
        if height > MAX_DEPTH:
            raise yaml.MarkedYAMLError(problem=f"nested deeper than {MAX_DEPTH} levels "
                                       "(aliases included)", problem_mark=mark)
        self._shape[id(node)] = (size, height)
        return node

    def construct_yaml_int(self, node: ScalarNode) -> int:
        digits = sum(ch.isdigit() or ch in "abcdefABCDEF" for ch in str(node.value))
        if digits > MAX_INT_DIGITS:
            raise yaml.MarkedYAMLError(problem=f"integer with more than {MAX_INT_DIGITS} digits",
                                       problem_mark=node.start_mark)
        return int(super().construct_yaml_int(node))

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = key_node.value
                if key in seen:
                    raise yaml.MarkedYAMLError(problem=f"duplicate key {key!r:.40} (first on line "
                                               f"{seen[key].line + 1})", problem_mark=key_node.start_mark)
                seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def parse_yaml(text: str) -> Any:
    """Parse YAML text under the limits above (the safe schema only).

    Raises
    ------
    InputProblem
        ``what = "invalid YAML"`` with the 1-based line when known.
    """
    loader = None
    try:
        loader = _Loader(text)
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        detail = _one_line(exc.problem or exc.context or "syntax error")
        raise InputProblem("invalid YAML", detail, mark.line + 1 if mark is not None else None) from None
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1 if isinstance(exc.position, int) else None
        raise InputProblem("invalid YAML", f"unacceptable character #x{exc.character:04x}"
                           if isinstance(exc.character, int) else _one_line(exc.reason), line) from None
    except yaml.YAMLError as exc:
        raise InputProblem("invalid YAML", _one_line(str(exc))) from None
    finally:
        if loader is not None:
            loader.dispose()


def parse_toml(text: str) -> dict[str, Any]:
    """Parse TOML text, then apply :func:`check_tree`'s limits."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputProblem("invalid TOML", _one_line(str(exc))) from None
    except RecursionError:
        raise InputProblem("invalid TOML", f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError:  # int() beyond Python's digit limit (syntax errors are TOMLDecodeError)
        raise InputProblem("invalid TOML", f"integer with more than {MAX_INT_DIGITS} digits") from None
    check_tree(data)
    return data


def check_tree(data: Any, what: str = "invalid value") -> None:
    """Refuse a parsed tree deeper than :data:`MAX_DEPTH`, larger than :data:`MAX_NODES` values,
    or holding an integer of more than :data:`MAX_INT_DIGITS` digits (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    count = 0
    limit = 10**MAX_INT_DIGITS
    while stack:
        x, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise InputProblem(what, f"more than {MAX_NODES:,} values")
        if depth > MAX_DEPTH:
            raise InputProblem(what, f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(x, int) and not isinstance(x, bool) and not -limit < x < limit:
            raise InputProblem(what, f"integer with more than {MAX_INT_DIGITS} digits")
        if isinstance(x, dict):
            stack.extend((v, depth + 1) for v in x.values())
            stack.extend((k, depth + 1) for k in x)
        elif isinstance(x, (list, tuple)):
            stack.extend((v, depth + 1) for v in x)

