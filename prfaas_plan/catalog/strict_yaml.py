"""One YAML loader for every input file: safe types only, and bounded.

On top of ``yaml.SafeLoader`` it rejects, each with one line naming the file and the place:
- a key given twice in one mapping (YAML would silently keep the last);
- nesting deeper than ``MAX_DEPTH`` (the composer would otherwise recurse until Python's stack
  runs out);
- an alias that refers to its own anchor (a self-containing structure);
- anchors and aliases that expand to more than ``MAX_EXPANDED_NODES`` nodes: a 2 KB file of
  nested aliases ("billion laughs") would otherwise become gigabytes once walked or printed.
The file itself is read by :func:`files.read_text` (size cap, regular files only, UTF-8).

Speed: the shipped catalog files (hardware/, models/, scenarios/ as shipped; the files of one
`optimize` took ~11 ms in pure Python) are scanned and parsed by libyaml in C where PyYAML has
it, 5x faster, then composed and constructed by the same Python composer, depth limit and
SafeConstructor as the pure-Python loader (libyaml's own composer recurses in C and crashes on
deep nesting); tests/test_strict_yaml.py checks that every shipped file loads identically both
ways. Any other file goes through the pure-Python loader alone: libyaml accepts some text that
PyYAML refuses (`key:<tab>value`, `{a? b}`, a bare `!` tag, a byte-order mark inside), so a user's
file is read exactly as before. On any problem the pure-Python loader reads the text again, so
every error is the one it gives.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

from ..errors import PlanError
from .files import MAX_YAML_BYTES, read_text, show_path
from .paths import KINDS, in_catalog

MAX_DEPTH = 32  # catalog files nest 4 levels; mixtures of mixtures a few more
MAX_EXPANDED_NODES = 100_000  # the largest shipped file has ~600 nodes


def _where(node: yaml.Node) -> str:
    mark = node.start_mark
    return f"line {mark.line + 1}, column {mark.column + 1}"


class _Depth:
    """A composer that counts its nesting depth (mixed into both loaders)."""

    _source = ""
    _depth = 0

    def compose_node(self, parent, index):  # noqa: D102 - yaml.composer.Composer hook
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise PlanError(f"{self._source}: nested deeper than {MAX_DEPTH} levels at line {mark.line + 1}")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _Loader(_Depth, yaml.SafeLoader):
    """SafeLoader whose composer counts its nesting depth (the reference: every error is its)."""

    def __init__(self, text: str, source: str):
        super().__init__(text)
        self._source = source


try:
    from yaml._yaml import CParser
except ImportError:  # PyYAML built without libyaml: the pure-Python loader only
    _FastLoader = None
else:

    class _FastLoader(_Depth, Composer, CParser, SafeConstructor, Resolver):
        """libyaml's scanner and parser under the pure-Python composer and constructor."""

        def __init__(self, text: str, source: str):
            CParser.__init__(self, text)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            Composer.__init__(self)
            self._source = source


#: PyYAML resolves YAML 1.1, where a float needs a dot: ``1e-4`` would be read as the string
#: "1e-4" and then refused as "not a number" (``0.0001`` was needed). YAML 1.2, and anyone writing
#: a loss share or a price, reads it as a number: such exponent-only floats resolve as floats here.
EXPONENT_FLOAT = re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$")


class _ValueLoader(yaml.SafeLoader):
    """SafeLoader for one command-line value (``--set KEY=VALUE``), with the same float rule."""


for _cls in (_Loader, _FastLoader, _ValueLoader):
    if _cls is not None:  # add_implicit_resolver copies the table: yaml.SafeLoader is unchanged
        _cls.add_implicit_resolver("tag:yaml.org,2002:float", EXPONENT_FLOAT, list("-+0123456789"))


def load_value(text: str) -> Any:
    """One YAML scalar or flow value as a scenario file would read it (``1e-4`` is a float)."""
    return yaml.load(text, Loader=_ValueLoader)


def _key_text(node: yaml.Node) -> str:
    text = str(node.value) if isinstance(node, yaml.ScalarNode) else f"<{node.id}>"
    return text if len(text) <= 60 else text[:59] + "\u2026"


class _Checker:
    """Walks the composed node graph once: duplicate keys, self-reference, expanded size and
    depth (aliases counted at every use). Results per node are memoised, so the walk costs the
    size of the file, not of its expansion."""

    def __init__(self, source: str):
        self.source = source
        self.memo: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded nodes, height)
        self.open: set[int] = set()

    def error(self, problem: str) -> PlanError:
        return PlanError(f"{self.source}: {problem}")

    def walk(self, node: yaml.Node, path: str, depth: int) -> tuple[int, int]:
        if depth > MAX_DEPTH:
            raise self.error(f"key '{path or '<top>'}': nested deeper than {MAX_DEPTH} levels (counting aliases)")
        key = id(node)
        if key in self.open:
            raise self.error(f"key '{path or '<top>'}' ({_where(node)}): an alias refers to its own anchor")
        if key in self.memo:
            size, height = self.memo[key]
        else:
            self.open.add(key)
            size, height = 1, 0
            if isinstance(node, yaml.MappingNode):
                seen: dict[str, yaml.Node] = {}
                for k, v in node.value:
                    name = _key_text(k)
                    if name == "<<":  # a merge key may repeat by design
                        name = f"<<{len(seen)}"
                    elif name in seen:
                        first = seen[name].start_mark.line + 1
                        raise self.error(f"key '{f'{path}.{name}' if path else name}': given twice (lines {first} and {k.start_mark.line + 1})")
                    seen[name] = k
                    child = f"{path}.{name}" if path else name
                    for sub in (k, v):
                        s, h = self.walk(sub, child, depth + 1)
                        size, height = size + s, max(height, h + 1)
            elif isinstance(node, yaml.SequenceNode):
                for i, item in enumerate(node.value):
                    s, h = self.walk(item, f"{path}[{i}]", depth + 1)
                    size, height = size + s, max(height, h + 1)
            self.open.discard(key)
            self.memo[key] = (size, height)
        if depth + height > MAX_DEPTH:
            raise self.error(f"key '{path or '<top>'}': nested deeper than {MAX_DEPTH} levels (counting aliases)")
        if size > MAX_EXPANDED_NODES:
            raise self.error(f"key '{path or '<top>'}': anchors and aliases expand to more than {MAX_EXPANDED_NODES:,} values")
        return size, height


def _shipped(path: Path) -> bool:
    """Whether ``path`` is a file of the shipped catalog (whose every file the tests load both ways)."""
    return any(in_catalog(kind, path) for kind in KINDS)


def _load(loader_class, text: str, source: str) -> Any:
    loader = loader_class(text, source)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _Checker(source).walk(node, "", 0)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def load_yaml(path: str | Path) -> Any:
    """The one YAML document in ``path`` as Python data (None for an empty file)."""
    source = show_path(path)
    text = read_text(path, "YAML file", MAX_YAML_BYTES)
    if _FastLoader is not None and _shipped(Path(path)):
        try:
            return _load(_FastLoader, text, source)
        except Exception:  # noqa: BLE001 - the pure-Python loader below names the problem
            pass
    try:
        return _load(_Loader, text, source)  # its reader already rejects control characters
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise PlanError(f"{source}: malformed YAML{where}: {problem}") from None
    except (ValueError, OverflowError) as exc:  # e.g. a date 2026-13-45
        raise PlanError(f"{source}: malformed YAML: {exc}") from None
