"""The Jinja sandbox letter templates run in, with a budget of time and memory.

Jinja's immutable sandbox already keeps a staff template away from Python: no attribute
starting with `_` (so no `__class__`, `__globals__`, `mro`), no method that changes data,
nothing the context does not hold (no settings, no request). It does not bound the work a
template may ask for: `{% for i in range(99999) %}{% for j in range(99999) %}` runs for hours,
`{{ 'x' * 10**9 }}` or `{{ '{:>999999999}'.format(1) }}` allocates a gigabyte, a macro calling
itself twice per level doubles its work forty times over. Any of these in the live preview,
or saved and used by a batch, would hang a web worker or the mail worker.

`BoundedSandbox` refuses them with `TemplateTooCostly` (a SecurityError, so the editor says
"Not allowed in a letter template"):

* steps: every loop iteration, call, operator and filter spends one step of the budget;
* output: every {{ expression }} written spends its length, every loop iteration, macro and
  call block the length of the literal text in its body (in a `{% set %}` block too);
* size: no operator, call or filter may make a value longer than a whole letter may be, and
  the ones that multiply (`*`, `**`, `%`, `~`, `str.format`, padding widths, `replace` …) are
  checked *before* they allocate.

The budget grows with the letter's hosts (a letter about 5,000 hosts writes more than one
about two) and is far above what the shipped templates use (tests/hostile measure it).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass
from types import BuiltinMethodType, FunctionType
from typing import Any

from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import pass_context, pass_eval_context
from jinja2.visitor import NodeTransformer
from markupsafe import Markup

# Per render: a base for any letter, plus so much per host it is about.
STEPS_BASE, STEPS_PER_HOST = 50_000, 2_000
OUTPUT_BASE, OUTPUT_PER_HOST = 500_000, 20_000  # characters
MAX_INT_BITS = 4_096  # results of * and ** on integers (about 1,200 digits)
MAX_NUMBER_ARG = 100_000  # widths, counts and repetitions given to calls and filters


class TemplateTooCostly(SecurityError):
    """A template asked for more work or memory than any letter needs."""


@dataclass
class Budget:
    steps: int
    output: int  # also the largest value an operation may produce

    @classmethod
    def for_hosts(cls, hosts: int) -> Budget:
        hosts = max(hosts, 1)
        return cls(STEPS_BASE + STEPS_PER_HOST * hosts, OUTPUT_BASE + OUTPUT_PER_HOST * hosts)


_BUDGET: contextvars.ContextVar[Budget | None] = contextvars.ContextVar("letter_budget",
                                                                        default=None)
# Outside a render (Jinja folding constants at compile time) only sizes are checked.
_COMPILE_TIME_LIMIT = OUTPUT_BASE


@contextlib.contextmanager
def budget(hosts: int) -> Iterator[Budget]:
    """Run the renders inside with a fresh budget for a letter about `hosts` hosts."""
    current = Budget.for_hosts(hosts)
    token = _BUDGET.set(current)
    try:
        yield current
    finally:
        _BUDGET.reset(token)


def _limit() -> int:
    current = _BUDGET.get()
    return current.output if current is not None else _COMPILE_TIME_LIMIT


def spend(steps: int = 1, output: int = 0) -> None:
    current = _BUDGET.get()
    if current is None:
        return
    current.steps -= steps
    if output:
        current.output -= output
    if current.steps < 0:
        raise TemplateTooCostly("the template does too much work (loops, calls or filters) "
                                "for one letter")
    if current.output < 0:
        raise TemplateTooCostly("the template writes more text than any letter needs")


def weight(value: Any) -> int:
    """About how many characters `value` holds (strings one level deep in containers)."""
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, bool):
        return 1
    if isinstance(value, int):
        return value.bit_length() // 3 + 1
    if isinstance(value, dict):
        return len(value) + sum(len(v) for v in value.values() if isinstance(v, str))
    if isinstance(value, list | tuple | set | frozenset | range):
        if isinstance(value, range):
            return len(value)
        return len(value) + sum(len(v) for v in value if isinstance(v, str))
    return 0


def _refuse_over(estimate: int, what: str) -> None:
    if estimate > _limit():
        raise TemplateTooCostly(f"{what} would make a value larger than any letter")


def _checked(value: Any, what: str) -> Any:
    _refuse_over(weight(value), what)
    return value


_PRINTF_WIDTH = re.compile(r"%[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _printf_estimate(fmt: str, args: Any) -> int:
    widths = [int(n) for match in _PRINTF_WIDTH.finditer(fmt) for n in match.groups()
              if n and n.isdigit()]
    if "*" in fmt or any(w > MAX_NUMBER_ARG for w in widths):
        raise TemplateTooCostly("a %-format width or precision is too large")
    values = args if isinstance(args, tuple | list) else [args]
    if isinstance(args, dict):
        values = list(args.values())
    biggest = max((weight(v) for v in values), default=0)
    return len(fmt) + fmt.count("%") * (biggest + max(widths, default=0))


def _format_estimate(fmt: str, args: tuple, kwargs: dict) -> int:
    try:
        fields = [spec for _text, name, spec, _conv in string.Formatter().parse(fmt)
                  if name is not None]
    except ValueError:
        return len(fmt)
    widths = [int(n) for spec in fields for n in re.findall(r"\d+", spec or "")]
    if any(w > MAX_NUMBER_ARG for w in widths) or any("{" in (spec or "") for spec in fields):
        raise TemplateTooCostly("a format width or precision is too large")
    biggest = max((weight(v) for v in (*args, *kwargs.values())), default=0)
    return len(fmt) + len(fields) * (biggest + max(widths, default=0))


def _str_method_estimate(text: str, method: str, args: tuple, kwargs: dict) -> int:
    """Before a str method runs: about how long its result can be."""
    first = args[0] if args else None
    if method in ("format", "format_map"):
        mapping = (first,) if method == "format_map" and isinstance(first, dict) else ()
        values = tuple(first.values()) if mapping else args
        return _format_estimate(text, values, kwargs)
    if method == "replace" and len(args) >= 2:
        old, new = str(args[0]), str(args[1])
        return len(text) + (len(text) + 1) // max(len(old), 1) * len(new) + len(text)
    if method == "expandtabs":
        return len(text) * max(int(first or kwargs.get("tabsize", 8)), 1)
    if method == "join" and isinstance(first, list | tuple):
        return weight(first) + len(text) * len(first)
    if method == "translate" and isinstance(first, dict):
        longest = max((len(v) for v in first.values() if isinstance(v, str)), default=1)
        return len(text) * longest
    return weight(text)


def _numbers_in(args: tuple, kwargs: dict) -> None:
    for value in (*args, *kwargs.values()) if kwargs else args:
        if type(value) is int and abs(value) > MAX_NUMBER_ARG:  # bool is not `int` here
            raise TemplateTooCostly(f"the number {value} is too large for a letter template")


def _bounded_filter(name: str, func: Any) -> Any:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        spend()
        # Filters get the context / eval context / environment first when they ask for it.
        skip = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0
        value, extra = (args[skip] if len(args) > skip else None), args[skip + 1:]
        _numbers_in(extra, kwargs)
        if extra or kwargs:
            multiplier = 1 + sum(weight(v) for v in (*extra, *kwargs.values())
                                 if isinstance(v, str))
            if name == "format" and isinstance(value, str):
                _refuse_over(_printf_estimate(value, extra or kwargs), f"the {name} filter")
            else:
                _refuse_over(weight(value) * multiplier, f"the {name} filter")
        return _checked(func(*args, **kwargs), f"the {name} filter")

    return wrapper


@pass_context
def _tick(context: Any, value: Any, literal: int) -> bool:
    """At the top of every loop iteration (recursive ones too), macro and call block: one
    step, and the literal text the body writes (an upper bound: its branches all taken)."""
    spend(1, literal)
    return True


def _emit(value: Any) -> Any:
    """Jinja's finalize hook: every {{ expression }} written spends its length."""
    current = _BUDGET.get()
    if current is not None:
        current.output -= len(value) if isinstance(value, str) else weight(value)
        if current.output < 0:
            spend(0)  # raises
    return value


@pass_eval_context
def _concat(eval_ctx: Any, values: list) -> str:
    """The `~` operator, with its result's size checked before it is built."""
    _refuse_over(sum(weight(v) for v in values), "the ~ operator")
    return markup_join(values) if eval_ctx.autoescape else str_join(values)


TICK, CONCAT = "_sys_tick", "_sys_concat"
_SCOPES = (nodes.For, nodes.Macro, nodes.CallBlock)


def _literal_size(body: list[nodes.Node]) -> int:
    """Characters of literal text in `body`, not counting nested loops, macros, call blocks."""
    total = 0
    stack = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, nodes.TemplateData):
            total += len(node.data)
        elif not isinstance(node, _SCOPES):
            stack.extend(node.iter_child_nodes())
    return total


def _tick_node(body: list[nodes.Node], lineno: int) -> nodes.Filter:
    return nodes.Filter(nodes.Const(None), TICK, [nodes.Const(_literal_size(body))], [],
                        None, None, lineno=lineno)


class _Bound(NodeTransformer):
    """Rewrites a parsed template so its loops, macros and `~` spend from the budget."""

    def _scope(self, node: nodes.For | nodes.Macro | nodes.CallBlock) -> nodes.Node:
        node = self.generic_visit(node)
        node.body.insert(0, nodes.ExprStmt(_tick_node(node.body, node.lineno),
                                           lineno=node.lineno))
        return node

    def visit_For(self, node: nodes.For) -> nodes.Node:
        node = self._scope(node)
        if node.test is not None:  # items the condition skips are iterations too
            node.test = nodes.And(_tick_node([], node.lineno), node.test, lineno=node.lineno)
        return node

    visit_Macro = visit_CallBlock = _scope

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        node = self.generic_visit(node)
        return nodes.Filter(nodes.List(node.nodes, lineno=node.lineno), CONCAT, [], [], None,
                            None, lineno=node.lineno)


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """ImmutableSandboxedEnvironment that charges every render against a Budget."""

    intercepted_binops = frozenset({"*", "**", "+", "%", "//"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.globals.pop("lipsum", None)  # no letter needs lorem ipsum; it takes a size
        self.filters = {name: _bounded_filter(name, func) for name, func in self.filters.items()}
        self.filters.update({TICK: _tick, CONCAT: _concat})
        self.finalize = _emit

    def _generate(self, source: nodes.Template, name: str | None, filename: str | None,
                  defer_init: bool = False) -> str:
        # Jinja's hook between parsing and code generation.
        return super()._generate(_Bound().visit(source), name, filename, defer_init=defer_init)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        spend()
        ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (left, right))
        if operator == "**" and ints and right > 0 and (
                max(abs(left), 2).bit_length() * right > MAX_INT_BITS):
            raise TemplateTooCostly("the ** operator would make a number too large")
        if operator == "**" and isinstance(right, int | float) and abs(right) > MAX_NUMBER_ARG:
            raise TemplateTooCostly("the ** operator would make a number too large")
        if operator == "*":
            if ints and left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise TemplateTooCostly("the * operator would make a number too large")
            if isinstance(right, int) and not ints:
                _refuse_over(weight(left) * max(right, 0), "the * operator")
            if isinstance(left, int) and not ints:
                _refuse_over(weight(right) * max(left, 0), "the * operator")
        if operator == "+" and not ints:
            _refuse_over(weight(left) + weight(right), "the + operator")
        if operator == "%" and isinstance(left, str):
            _refuse_over(_printf_estimate(left, right), "the % operator")
        return _checked(super().call_binop(context, operator, left, right),
                        f"the {operator} operator")

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        # On every call a template makes (a dozen gettext calls per letter): kept lean.
        current = _BUDGET.get()
        if current is not None:
            current.steps -= 1
            if current.steps < 0:
                spend(0)  # raises
        if args or kwargs:
            _numbers_in(args, kwargs)
        method = __obj
        if type(method) is FunctionType:  # the sandbox's wrapper of str.format / format_map
            method = method.__dict__.get("__wrapped__", method)
        if type(method) is BuiltinMethodType and type(method.__self__) is str:
            _refuse_over(_str_method_estimate(method.__self__, method.__name__, args, kwargs),
                         f"str.{method.__name__}")
        result = super().call(__context, __obj, *args, **kwargs)
        if type(result) is str or type(result) is Markup:
            if len(result) > _limit():
                _refuse_over(len(result), "a call")
            return result
        return _checked(result, "a call")
