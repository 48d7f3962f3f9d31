"""The YAML loader's fast path for the shipped catalog (libyaml's parser under the pure-Python
composer and constructor) gives exactly what the pure-Python loader gives for every shipped file;
any other file is read by the pure-Python loader alone; errors are always the pure-Python
loader's."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from prfaas_plan.catalog import strict_yaml as sy
from prfaas_plan.catalog.paths import catalog_dir
from prfaas_plan.errors import PlanError

pytestmark = pytest.mark.skipif(sy._FastLoader is None, reason="PyYAML without libyaml: one loader only")

SHIPPED = sorted(p for kind in ("hardware", "models", "scenarios") for p in catalog_dir(kind).glob("*.yaml"))

ODD = [
    "", "# only a comment\n", "---\n", "a: 1\n", "a: &x {b: [1, 2.5, -3e4, .inf, -.nan, 0x1f, 0o17, 1_000]}\nc: *x\n",
    "base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\n", "s: |\n  two\n  lines\n", "s: >-\n  folded\n  text\n",
    "d: 2026-01-31\nt: 2001-12-14t21:59:43.10-05:00\n", "b: [yes, no, on, off, true, False, ~, null]\n",
    "q: 'it''s'\nw: \"tab\\tand \\u00e9\"\n", "k: !!str 123\nf: !!float '1'\n", "a:\tb\n", "a: b\u2028c: d\n",
    "key with spaces: v\n? complex\n: value\n", "[1, 2, {a: b}]\n", "a: 1\na: 2\n", "a: [1\n", "a: b: c\n",
    "x: &loop [1, *loop]\n", "x: *missing\n", "---\na: 1\n---\nb: 2\n", "a: !!python/object:os.system x\n",
    "n: " + "[" * 40 + "]" * 40 + "\n", "n: " + "[" * 5000 + "]" * 5000 + "\n", "\x07bell: 1\n", "a: \ufeffb\n",
    "a: 2026-13-45\n", "a: 1e400\n", "- a\n- - b\n  - c\n", "a:\n- 1\n- 2\n", "a: 'unterminated\n",
]


def outcome(loader, text: str):
    try:
        return ("value", repr(sy._load(loader, text, "f.yaml")))
    except (yaml.YAMLError, PlanError, ValueError, OverflowError) as exc:
        return ("error", type(exc).__name__)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_files_load_the_same(path):
    text = path.read_text(encoding="utf-8")
    assert sy._load(sy._FastLoader, text, str(path)) == sy._load(sy._Loader, text, str(path))
    assert repr(sy._load(sy._FastLoader, text, str(path))) == repr(sy._load(sy._Loader, text, str(path)))


def test_only_shipped_files_take_the_fast_path(tmp_path, monkeypatch):
    used = []

    class Counting(sy._FastLoader):
        def __init__(self, text, source):
            used.append(source)
            super().__init__(text, source)

    monkeypatch.setattr(sy, "_FastLoader", Counting)
    copy = tmp_path / SHIPPED[0].name
    copy.write_text(SHIPPED[0].read_text(encoding="utf-8"), encoding="utf-8")
    assert sy.load_yaml(SHIPPED[0]) == sy.load_yaml(copy)
    assert used == [sy.show_path(SHIPPED[0])]


def _pure(path):
    try:
        return ("value", repr(sy._load(sy._Loader, path.read_text(encoding="utf-8"), sy.show_path(path))))
    except Exception:  # noqa: BLE001 - the message load_yaml makes of it, without the fast path
        keep, sy._FastLoader = sy._FastLoader, None
        try:
            sy.load_yaml(path)
        except PlanError as exc:
            return ("error", str(exc))
        finally:
            sy._FastLoader = keep
    raise AssertionError("unreachable")


def _got(path):
    try:
        return ("value", repr(sy.load_yaml(path)))
    except PlanError as exc:
        return ("error", str(exc))


@pytest.mark.parametrize("text", ODD, ids=range(len(ODD)))
def test_other_files_load_as_the_pure_python_loader_reads_them(tmp_path, text):
    """A user's file never meets libyaml: `key:<tab>value` stays an error, as before."""
    path = tmp_path / "f.yaml"
    path.write_text(text, encoding="utf-8")
    assert _got(path) == _pure(path)


@pytest.mark.parametrize("text", ODD, ids=range(len(ODD)))
def test_a_failing_fast_path_gives_the_pure_python_error(tmp_path, monkeypatch, text):
    """Were a shipped file broken, its error would be the pure-Python loader's, word for word."""
    path = tmp_path / "f.yaml"
    path.write_text(text, encoding="utf-8")
    if outcome(sy._FastLoader, text)[0] == "value":
        return
    monkeypatch.setattr(sy, "_shipped", lambda p: True)
    assert _got(path) == _pure(path)


scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20),
                    st.dates(), st.sampled_from(["yes", "no", "~", "1e3", "0x10", "2026-01-31", "a: b", "- x", "#c", "'q'", "\u2028"]))
documents = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)


@settings(max_examples=100, deadline=None)
@given(documents, st.sampled_from([{}, {"default_flow_style": True}, {"default_style": '"'}, {"allow_unicode": True}, {"width": 20}]))
def test_written_documents_load_the_same_both_ways(data, style):
    """What yaml.safe_dump writes (the shape of a catalog file) reads the same both ways; a
    new shipped file is checked exactly by test_shipped_files_load_the_same."""
    text = yaml.safe_dump(data, **style)
    if "\t" in text:  # libyaml takes tabs PyYAML refuses
        return
    assert outcome(sy._FastLoader, text) == outcome(sy._Loader, text)


@pytest.mark.parametrize("text, value", [("1e-4", 1e-4), ("-2E3", -2000.0), ("+5e0", 5.0), ("1_0e1", 100.0), ("1.5e-3", 1.5e-3),
                                         ("12", 12), ("1e", "1e"), ("e5", "e5"), ("'1e-4'", "1e-4")])
def test_exponent_floats_read_as_numbers(tmp_path, text, value):
    """PyYAML's YAML 1.1 read `loss_frac: 1e-4` as the string '1e-4' (then refused as not a
    number); a scenario file, the fast path and a `--set` value all read it as 0.0001 now, and a
    quoted one stays a string."""
    path = tmp_path / "f.yaml"
    path.write_text(f"x: {text}\n", encoding="utf-8")
    assert sy.load_yaml(path) == {"x": value}
    assert sy._load(sy._FastLoader, f"x: {text}\n", "f") == {"x": value}
    assert sy.load_value(text) == value
    assert type(sy.load_value(text)) is type(value)
