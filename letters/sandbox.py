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
  checked *before* they allocate; no sequence built may hold more than `Budget.items` items;
* work in C: a comparison, `in`, slice, `sort`, `join`, `unique`, a str or list method … runs
  over its operands at C speed and spends no Jinja step, so each operand (and each value an
  operation makes) spends steps by its deep size *before* the operation runs: one per item,
  one per `CHARS_PER_STEP` characters (`{% if x in big %}` pays for `big`, every time);
* time: whatever the counting misses, a render stops after `LETTER_RENDER_SECONDS` of CPU
  time (as much again per `HOSTS_PER_DEADLINE` hosts the letter is about: a real letter about
  2,000 hosts takes ~1.7 s); the clock is read every `CLOCK_EVERY` steps and before every
  operation charged more than that. CPU time of the rendering thread, not wall time: a loaded
  machine must not refuse a letter it would render, and a render can only stall its worker
  by using CPU.

The budget grows with the letter's hosts (a letter about 5,000 hosts writes more than one
about two) and is far above what the shipped templates use (tests/hostile measure it).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
import re
import string
import time
from collections.abc import Iterable, Iterator
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
ITEMS_BASE, ITEMS_PER_HOST = 100_000, 50  # the longest sequence a template may build
# Characters a C string operation (memcmp, find, copy, upper …) goes through in about the time
# of one template step (measured: ~0.3 µs a step, ~1 ns a character for the slowest of them).
CHARS_PER_STEP = 100
CLOCK_EVERY = 2_000  # steps between two looks at the clock (thread_time() is a system call)
HOSTS_PER_DEADLINE = 1_000
DEFAULT_RENDER_SECONDS = 2.0  # settings.LETTER_RENDER_SECONDS when Django has none

# Why a render was refused (TemplateTooCostly.reason).
STEPS, OUTPUT, SIZE, TIME = "steps", "output", "size", "time"


class TemplateTooCostly(SecurityError):
    """A template asked for more work or memory than any letter needs."""

    def __init__(self, message: str, reason: str = SIZE) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class Budget:
    steps: int
    output: int  # also the largest value an operation may produce
    items: int = ITEMS_BASE  # the longest sequence an operation may produce
    deadline: float = math.inf  # time.thread_time() after which the render is refused
    clock_at: int = 0  # look at the clock again when `steps` falls below this

    @classmethod
    def for_hosts(cls, hosts: int, seconds: float = math.inf) -> Budget:
        hosts = max(hosts, 1)
        steps = STEPS_BASE + STEPS_PER_HOST * hosts
        return cls(steps, OUTPUT_BASE + OUTPUT_PER_HOST * hosts,
                   ITEMS_BASE + ITEMS_PER_HOST * hosts, time.thread_time() + seconds,
                   steps - CLOCK_EVERY)


_BUDGET: contextvars.ContextVar[Budget | None] = contextvars.ContextVar("letter_budget",
                                                                        default=None)
# Outside a render (Jinja folding constants at compile time) only sizes are checked.
_COMPILE_TIME_LIMIT = OUTPUT_BASE


def render_seconds() -> float:
    """settings.LETTER_RENDER_SECONDS: the longest a render may hold a worker."""
    try:
        from django.conf import settings

        return float(getattr(settings, "LETTER_RENDER_SECONDS", DEFAULT_RENDER_SECONDS))
    except Exception:  # Django not configured (a plain script): the default  # noqa: BLE001
        return DEFAULT_RENDER_SECONDS


@contextlib.contextmanager
def budget(hosts: int, seconds: float | None = None) -> Iterator[Budget]:
    """Run the renders inside with a fresh budget for a letter about `hosts` hosts, stopped
    after `seconds` of CPU time (default: settings.LETTER_RENDER_SECONDS, more for a letter
    about many hosts)."""
    if seconds is None:
        seconds = render_seconds() * (1 + max(hosts, 0) // HOSTS_PER_DEADLINE)
    current = Budget.for_hosts(hosts, seconds)
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
                                "for one letter", STEPS)
    if current.output < 0:
        raise TemplateTooCostly("the template writes more text than any letter needs", OUTPUT)
    if current.steps < current.clock_at:
        current.clock_at = current.steps - CLOCK_EVERY
        if time.thread_time() > current.deadline:
            raise TemplateTooCostly("the template takes longer to render than any letter may",
                                    TIME)


_CONTAINERS = (list, tuple, set, frozenset, dict)


def measure(value: Any, limit: int) -> tuple[int, int]:
    """(items, characters) in `value`, deep: nested containers and strings, a value held
    twice counted twice (comparing or printing it goes through it twice). Stops as soon as
    items + characters / CHARS_PER_STEP pass `limit`, so the walk itself is bounded."""
    items = chars = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str | bytes):
            chars += len(item)
        elif isinstance(item, _CONTAINERS):
            items += len(item)
            if items + chars // CHARS_PER_STEP > limit:
                break
            if isinstance(item, dict):
                stack.extend(item.keys())
                stack.extend(item.values())
            else:
                stack.extend(item)
        elif isinstance(item, range):  # lazy, but `in` and filters go through all of it
            items += len(item)
        elif isinstance(item, int) and not isinstance(item, bool):
            chars += item.bit_length() // 3
        if items + chars // CHARS_PER_STEP > limit:
            break
    return items, chars


def _work(value: Any, limit: int) -> int:
    items, chars = measure(value, limit)
    return 1 + items + chars // CHARS_PER_STEP


def charge(*values: Any, factor: int = 1) -> None:
    """Spend the steps an operation in C will take going through `values` (deep), before it
    runs. Outside a render (constant folding at compile time) nothing is charged."""
    current = _BUDGET.get()
    if current is None:
        return
    limit = max(current.steps, 0) // factor + 1
    cost = 0
    for value in values:  # kept lean: every comparison in a letter comes here
        kind = type(value)
        if kind is str or kind is Markup:
            cost += 1 + len(value) // CHARS_PER_STEP
        elif kind is int or kind is bool or kind is float or value is None:
            cost += 1
        else:
            cost += _work(value, limit)
    spend(cost * factor)


def weight(value: Any) -> int:
    """About how many characters `value` holds, deep (a container's items count one each)."""
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, bool):
        return 1
    if isinstance(value, int):
        return value.bit_length() // 3 + 1
    if isinstance(value, range):
        return len(value)
    if isinstance(value, _CONTAINERS):
        items, chars = measure(value, _limit())
        return items + chars
    return 0


def _refuse_over(estimate: int, what: str) -> None:
    if estimate > _limit():
        raise TemplateTooCostly(f"{what} would make a value larger than any letter")


def _checked(value: Any, what: str) -> Any:
    if isinstance(value, _CONTAINERS):
        # A value made in C was as much work as it is large, and the next operation on it
        # must not meet a list longer than any letter needs.
        current = _BUDGET.get()
        if current is not None and len(value) > current.items:
            raise TemplateTooCostly(f"{what} would make a sequence longer than any letter needs")
        charge(value)
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


# Filters that look at one item or at the length only: no charge for going through the value.
_CHEAP_FILTERS = frozenset({"length", "count", "first", "last", "random", "default", "d",
                            "attr", "safe", "abs", "int", "float", "round", "filesizeformat"})
# Filters that compare items with each other: n log n comparisons.
_SORTING_FILTERS = frozenset({"sort", "dictsort", "groupby", "unique"})


def _factor(name: str, value: Any, extra: tuple = (), kwargs: dict | None = None) -> int:
    if name in _SORTING_FILTERS and isinstance(value, _CONTAINERS):
        return max(len(value), 2).bit_length()
    if name == "wordwrap" and isinstance(value, str):
        # textwrap cuts a long word `width` characters at a time, copying the rest each time:
        # about len² / width characters of work (`'a'*450000|wordwrap(1)`: 7 s of CPU in one
        # call, which the clock, read between steps, cannot stop).
        width = extra[0] if extra else (kwargs or {}).get("width", 79)
        if type(width) is not int or width < 1:
            return 1  # jinja refuses it itself
        return 1 + len(value) // width
    return 1


def _metered(items: Iterable[Any]) -> Iterator[Any]:
    """A lazy filter's output (map, select, batch …): each item taken spends a step."""
    for item in items:
        spend()
        yield item


def _bounded_filter(name: str, func: Any) -> Any:
    cheap = name in _CHEAP_FILTERS

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        # Filters get the context / eval context / environment first when they ask for it.
        skip = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0
        value, extra = (args[skip] if len(args) > skip else None), args[skip + 1:]
        if cheap:
            spend()
        else:
            charge(value, *extra, *kwargs.values(),
                   factor=_factor(name, value, extra, kwargs))
        _numbers_in(extra, kwargs)
        if extra or kwargs:
            multiplier = 1 + sum(weight(v) for v in (*extra, *kwargs.values())
                                 if isinstance(v, str))
            if name == "format" and isinstance(value, str):
                _refuse_over(_printf_estimate(value, extra or kwargs), f"the {name} filter")
            else:
                _refuse_over(weight(value) * multiplier, f"the {name} filter")
        result = func(*args, **kwargs)
        if isinstance(result, Iterator):
            return _metered(result)
        return _checked(result, f"the {name} filter")

    return wrapper


# Jinja tests that compare their value with their argument (`x is in big`, `select('eq', y)`).
_COMPARING_TESTS = frozenset({"eq", "equalto", "==", "ne", "!=", "lt", "lessthan", "<", "le",
                              "<=", "gt", "greaterthan", ">", "ge", ">=", "in"})


def _bounded_test(name: str, func: Any) -> Any:
    comparing = name in _COMPARING_TESTS

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if comparing:
            charge(*args)
        else:
            spend()
        return func(*args, **kwargs)

    return wrapper


@pass_context
def _work_of(context: Any, value: Any) -> Any:
    """Around each operand of a comparison (`==`, `<`, `in` …): it is gone through in C."""
    charge(value)
    return value


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
        if isinstance(value, str):
            current.output -= len(value)
            if current.output < 0:
                spend(0)  # raises
        else:  # printed by str(): as large as it is deep, and as much work
            charge(value)
            spend(0, weight(value))
    return value


@pass_eval_context
def _concat(eval_ctx: Any, values: list) -> str:
    """The `~` operator, with its result's size checked before it is built."""
    _refuse_over(sum(weight(v) for v in values), "the ~ operator")
    charge(*values)
    return markup_join(values) if eval_ctx.autoescape else str_join(values)


TICK, CONCAT, WORK = "_sys_tick", "_sys_concat", "_sys_work"
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

    def visit_Compare(self, node: nodes.Compare) -> nodes.Node:
        node = self.generic_visit(node)
        node.expr = self._work(node.expr)
        for operand in node.ops:
            operand.expr = self._work(operand.expr)
        return node

    def visit_Getitem(self, node: nodes.Getitem) -> nodes.Node:
        node = self.generic_visit(node)
        if isinstance(node.arg, nodes.Slice):  # compiled to obj[a:b], past getitem(): a copy
            node.node = self._work(node.node)
        return node

    @staticmethod
    def _work(expr: nodes.Expr) -> nodes.Filter:
        return nodes.Filter(expr, WORK, [], [], None, None, lineno=expr.lineno)

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
        self.filters.update({TICK: _tick, CONCAT: _concat, WORK: _work_of})
        self.tests = {name: _bounded_test(name, func) for name, func in self.tests.items()}
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
        if not ints:  # concatenation, repetition, formatting: C going through both
            charge(left, right)
        return _checked(super().call_binop(context, operator, left, right),
                        f"the {operator} operator")

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(argument, slice):  # a copy: as much work as the value is long
            # (Jinja compiles a literal slice to obj[a:b]; _Bound charges those.)
            charge(obj)
            return _checked(super().getitem(obj, argument), "a slice")
        return super().getitem(obj, argument)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        # On every call a template makes (a dozen gettext calls per letter): kept lean.
        current = _BUDGET.get()
        if current is not None:
            current.steps -= 1
            if current.steps < current.clock_at or current.steps < 0:
                spend(0)  # raises when over budget, or looks at the clock
        if args or kwargs:
            _numbers_in(args, kwargs)
        method = __obj
        if type(method) is FunctionType:  # the sandbox's wrapper of str.format / format_map
            method = method.__dict__.get("__wrapped__", method)
        if type(method) is BuiltinMethodType:
            # str.split, list.index, dict.items …: C going through the object and arguments.
            charge(method.__self__, *args, *kwargs.values())
            if type(method.__self__) is str:
                _refuse_over(_str_method_estimate(method.__self__, method.__name__, args,
                                                  kwargs), f"str.{method.__name__}")
        elif isinstance(method, type) and (args or kwargs):  # dict(...) and the like
            charge(*args, *kwargs.values())
        result = super().call(__context, __obj, *args, **kwargs)
        if type(result) is str or type(result) is Markup:
            if len(result) > _limit():
                _refuse_over(len(result), "a call")
            return result
        return _checked(result, "a call")
