"""Rule tables compiled to Python: the source algebra both rule tables use.

A rule table (:mod:`relto.decisions.rules`, :mod:`relto.export_control.rules`)
writes each condition once, as a function of an *algebra* ``L``. Run with
:class:`SourceAlgebra`, the functions build Python source text (values are
:class:`Src`); :func:`compile_function` turns it into the plain function the code
calls at run time. ``and``/``or`` compile to Python's, so they short-circuit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["SourceAlgebra", "Src", "compile_function", "source_of"]


class Src(str):
    """A Python expression (as source text); attribute access builds ``x.attr``."""

    def __getattr__(self, name: str) -> Src:
        if name.startswith("__"):
            raise AttributeError(name)
        return Src(f"{self}.{name}")


def source_of(x: Any) -> str:
    """``x`` as Python source: an expression, or a literal."""
    if isinstance(x, Src):
        return str(x)
    if isinstance(x, bool | int | str | tuple | frozenset) or x is None:
        return repr(x)
    raise TypeError(f"cannot compile {type(x).__name__}")


_src = source_of


class SourceAlgebra:
    """The algebra whose values are Python source. ``lit_in`` literals become named
    constants (``consts``: put them in the compiled function's namespace);
    ``matches`` calls ``_matches``, which the namespace must provide."""

    true = Src("True")
    false = Src("False")

    def __init__(self) -> None:
        self._n = 0
        self.consts: dict[str, frozenset[str]] = {}

    def _var(self) -> Src:
        self._n += 1
        return Src(f"_v{self._n}")

    def not_(self, a: Any) -> Src:
        return Src(f"(not {_src(a)})")

    def and_(self, *xs: Any) -> Src:
        return Src("(" + " and ".join(_src(x) for x in xs) + ")")

    def or_(self, *xs: Any) -> Src:
        return Src("(" + " or ".join(_src(x) for x in xs) + ")")

    def some(self, a: Any) -> Src:
        return Src(f"({_src(a)} is not None)")

    def eq(self, a: Any, b: Any) -> Src:
        return Src(f"({_src(a)} == {_src(b)})")

    def lt(self, a: Any, b: Any) -> Src:
        return Src(f"({_src(a)} < {_src(b)})")

    def le(self, a: Any, b: Any) -> Src:
        return Src(f"({_src(a)} <= {_src(b)})")

    def ite(self, c: Any, a: Any, b: Any) -> Src:
        return Src(f"({_src(a)} if {_src(c)} else {_src(b)})")

    def add(self, *xs: Any) -> Src:
        return Src("(" + " + ".join(_src(x) for x in xs) + ")")

    def matches(self, pattern: Any, designator: Any) -> Src:
        return Src(f"_matches({_src(pattern)}, {_src(designator)})")

    def member(self, x: Any, s: Any) -> Src:
        return Src(f"({_src(x)} in {_src(s)})")

    def lit_in(self, x: Any, lits: tuple[str, ...]) -> Src:
        value = frozenset(lits)
        name = next((k for k, v in self.consts.items() if v == value), f"_c{len(self.consts)}")
        self.consts[name] = value
        return Src(f"({_src(x)} in {name})")

    def any_(self, coll: Any, fn: Callable[[Any], Any]) -> Src:
        v = self._var()
        return Src(f"any({_src(fn(v))} for {v} in {_src(coll)})")

    def all_(self, coll: Any, fn: Callable[[Any], Any]) -> Src:
        v = self._var()
        return Src(f"all({_src(fn(v))} for {v} in {_src(coll)})")


def compile_function(
    params: tuple[str, ...], body: str, filename: str, namespace: Mapping[str, Any]
) -> tuple[str, Callable[..., Any]]:
    """``def _rule(*params): return <body>`` compiled in a copy of ``namespace``:
    (its source, the function)."""
    source = f"def _rule({', '.join(params)}):\n    return {body}\n"
    scope = dict(namespace)
    exec(compile(source, filename, "exec"), scope)  # noqa: S102
    fn: Callable[..., Any] = scope["_rule"]
    return source, fn
