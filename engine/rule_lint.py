"""Load-time checks of a rule against the rule API: names it does not have, keywords its methods do
not take, assignments to what is read-only; each as a "Line N: message" error with the closest real name.

Only what resolves statically is checked, so there are no false alarms: the rule function's two
parameters (whatever they are called) and names bound once, by a plain assignment at the top of
its body, to something read from them (`mf = context.multifactor`). A rebound name, a name bound
in a branch or a loop, a helper's parameters, `getattr`, what a call returns and anything below a
data value (`user.app_metadata...`) are not checked.

The tables come from the code: the names rules may read from RuleHost.access (what the sandbox
lets through), which of them are rule-API objects from the classes' annotations (plus
_UNANNOTATED), methods and their keywords from inspect.signature, assignable names from
`WRITABLE` on the class. A name added to the rule API is known here without editing this module.
"""

from __future__ import annotations

import ast
import difflib
import inspect
import re
import types
import typing
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from engine.rule_api import FACTOR_OPTIONS, Connection, Context, Geo, Multifactor, User
from engine.rule_host import RuleHost

ENTRY = "rule"
ROOTS: tuple[tuple[str, type], ...] = (("user", User), ("context", Context))

# Rule-API objects held in attributes the classes do not annotate.
_UNANNOTATED: dict[tuple[type, str], type] = {(Connection, "geo"): Geo}

# Methods that take **options and check them when they run: the option names they accept, so a
# misspelt one (`add_factor(name="otp")`) is reported at load time like any other keyword.
_OPTIONS: dict[object, frozenset[str]] = {Multifactor.add_factor: frozenset().union(*FACTOR_OPTIONS.values())}

# Other products' idioms, by the path a rule wrote: what to write here. A suggestion is only
# made while its target exists in the rule API.
IDIOMS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("context.clientID", "context.clientId", "context.client_id"), ("context.client.client_id",)),
    **dict.fromkeys(("context.clientName", "context.client_name"), ("context.client.name",)),
    **dict.fromkeys(("context.idToken", "context.id_token", "context.accessToken", "context.access_token"),
                    ("context.claims",)),
    **dict.fromkeys(("context.ip", "context.request.ip"), ("context.connection.ip",)),
    **dict.fromkeys(("context.geoip", "context.geo", "context.request.geoip"), ("context.connection.geo",)),
    **dict.fromkeys(("context.userAgent", "context.user_agent"), ("context.request.user_agent",)),
    "context.country": ("context.connection.ip_country",),
    "context.redirect": ("context.multifactor.return_to",),
    "context.configuration": ("context.settings",),
    "user.multifactor": ("user.factors", "context.multifactor"),
    **dict.fromkeys(("user.id", "user.sub", "user.userId"), ("user.user_id",)),
}
# Read-only paths a rule tried to assign: the call that does it. `{key}` is the field written, if known.
WRITE_IDIOMS: dict[str, str] = {
    "context.multifactor": "context.multifactor.enable(...)",
    "context.multifactor.provider": "context.multifactor.enable(provider=...)",
    "context.multifactor.allow_remember_browser": "context.multifactor.enable(allow_remember_browser=...)",
    "context.multifactor.required": "context.multifactor.enable()",
    "context.multifactor.factors": "context.multifactor.add_factor(...)",
    "context.denied": "context.deny(reason)",
    "user.app_metadata": "context.set_app_metadata({key}, value)",
    "user.user_metadata": "context.set_user_metadata({key}, value)",
}


@dataclass(frozen=True, slots=True)
class _Api:
    """A rule-API object, by the path rule authors know it by (`context.connection`)."""

    kind: type
    path: str


@dataclass(frozen=True, slots=True)
class _Method:
    keywords: frozenset[str] | None  # None: takes any keyword
    path: str


@dataclass(frozen=True, slots=True)
class _Value:
    """Data read from the rule API: frozen, so never assignable; not checked below."""

    path: str


_Ref = _Api | _Method | _Value
# Nodes with nothing below them to check or bind: skipped fast (the lint runs on every load).
_LEAVES: frozenset[type] = frozenset({ast.Name, ast.Constant, *ast.expr_context.__subclasses__(),
                                      *ast.operator.__subclasses__(), *ast.unaryop.__subclasses__(),
                                      *ast.cmpop.__subclasses__(), *ast.boolop.__subclasses__()})


@dataclass(frozen=True, slots=True)
class _Member:
    """One readable name of a rule-API type: a nested rule-API object, a method, or data."""

    api: type | None = None
    is_method: bool = False
    keywords: frozenset[str] | None = None  # a method's keywords; None: takes any


def _annotated_api_types(kind: type, api_types: frozenset[type]) -> dict[str, type]:
    try:
        hints = typing.get_type_hints(kind)
    except (NameError, TypeError):
        return {}
    found = {}
    for name, hint in hints.items():
        options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        inner = [option for option in options if option in api_types]
        if len(inner) == 1:
            found[name] = inner[0]
    return found


def _keywords(function: types.FunctionType) -> frozenset[str] | None:
    parameters = list(inspect.signature(function).parameters.values())[1:]  # after self
    named = frozenset(p.name for p in parameters
                      if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY))
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        options = _OPTIONS.get(function)
        return None if options is None else named | options
    return named


def _build_model() -> dict[type, dict[str, _Member]]:
    """Per rule-API type, per readable name: what it is."""
    readable = RuleHost.access.readable
    api_types = frozenset(readable)
    model: dict[type, dict[str, _Member]] = {}
    for kind, names in readable.items():
        nested = {**_annotated_api_types(kind, api_types),
                  **{name: inner for (outer, name), inner in _UNANNOTATED.items() if outer is kind}}
        members: dict[str, _Member] = {}
        for name in names:
            member = inspect.getattr_static(kind, name, None)
            if name in nested:
                members[name] = _Member(api=nested[name])
            elif isinstance(member, types.FunctionType):
                members[name] = _Member(is_method=True, keywords=_keywords(member))
            else:
                members[name] = _Member()
        model[kind] = members
    return model


_MODEL = _build_model()


def kind_of(kind: type, name: str) -> str:
    """How the lint sees `kind.name`: the rule-API type's name, "method" or "value" (for the drift test)."""
    member = _MODEL[kind][name]
    if member.api is not None:
        return member.api.__name__
    return "method" if member.is_method else "value"


def lint(source: str) -> list[str]:
    """The rule API mistakes in `source`'s rule function, as "Line N: message", in line order.
    Source that does not parse, or has no rule function, is the compiler's to report."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    functions = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == ENTRY]
    if not functions:
        return []
    try:
        found = _RuleChecker(functions[-1]).check()
    except RecursionError:
        return []
    return [f"Line {line}: {message}" for line, _, message in sorted(set(found))]


class _RuleChecker:
    def __init__(self, function: ast.FunctionDef) -> None:
        self.function = function
        self.env: dict[str, _Ref] = {}
        self.memo: dict[int, _Ref | None] = {}
        self.found: list[tuple[int, int, str]] = []

    def check(self) -> list[tuple[int, int, str]]:
        bound = _bindings(self.function)
        parameters = [*self.function.args.posonlyargs, *self.function.args.args][:len(ROOTS)]
        for parameter, (root, kind) in zip(parameters, ROOTS, strict=False):
            if bound[parameter.arg] == 1:
                self.env[parameter.arg] = _Api(kind, root)
        for statement in self.function.body:
            target, value = _simple_assignment(statement)
            if target is not None and value is not None and bound[target] == 1:
                ref = self.resolve(value, frozenset())
                if ref is not None:
                    self.env[target] = ref
        for statement in self.function.body:
            self.visit(statement, frozenset())
        return self.found

    def report(self, node: ast.AST, message: str) -> None:
        self.found.append((getattr(node, "lineno", 1), getattr(node, "col_offset", 0), message))

    def visit(self, node: ast.AST, shadowed: frozenset[str]) -> None:
        if type(node) in _LEAVES:
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            for default in (*node.args.defaults, *node.args.kw_defaults):
                if default is not None:
                    self.visit(default, shadowed)
            inner = shadowed | frozenset(_bindings(node))
            for statement in (node.body if isinstance(node.body, list) else [node.body]):
                self.visit(statement, inner)
            return
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            shadowed = shadowed | frozenset(_stored_names(g.target for g in node.generators))
        elif isinstance(node, ast.Attribute):
            if isinstance(node.ctx, ast.Store):
                self.check_assignment(node, shadowed)
            else:
                self.resolve(node, shadowed)
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store):
            self.check_item_assignment(node, shadowed)
        elif isinstance(node, ast.Call):
            self.check_call(node, shadowed)
        for child in ast.iter_child_nodes(node):
            self.visit(child, shadowed)

    def resolve(self, node: ast.expr, shadowed: frozenset[str]) -> _Ref | None:
        key = id(node)
        if key not in self.memo:
            self.memo[key] = self._resolve(node, shadowed)
        return self.memo[key]

    def _resolve(self, node: ast.expr, shadowed: frozenset[str]) -> _Ref | None:
        if isinstance(node, ast.Name):
            return None if node.id in shadowed else self.env.get(node.id)
        if not isinstance(node, ast.Attribute):
            return None
        base = self.resolve(node.value, shadowed)
        if not isinstance(base, _Api):
            return None
        path = f"{base.path}.{node.attr}"
        member = _MODEL[base.kind].get(node.attr)
        if member is None:
            self.report(node, _unknown_attribute(base, node.attr))
            return None
        if member.api is not None:
            return _Api(member.api, path)
        return _Method(member.keywords, path) if member.is_method else _Value(path)

    def check_assignment(self, node: ast.Attribute, shadowed: frozenset[str]) -> None:
        base = self.resolve(node.value, shadowed)
        if isinstance(base, _Value):
            self.report(node, _read_only(base.path, node.attr))
        elif isinstance(base, _Api):
            if node.attr not in _MODEL[base.kind]:
                self.report(node, _unknown_attribute(base, node.attr))
            elif base.kind not in RuleHost.access.writable or node.attr not in getattr(base.kind, "WRITABLE", ()):
                self.report(node, _read_only(f"{base.path}.{node.attr}", None))

    def check_item_assignment(self, node: ast.Subscript, shadowed: frozenset[str]) -> None:
        base = self.resolve(node.value, shadowed)
        key = node.slice.value if isinstance(node.slice, ast.Constant) and type(node.slice.value) is str else None
        if isinstance(base, _Value):
            self.report(node, _read_only(base.path, key))
        elif isinstance(base, _Api) and not (base.kind in RuleHost.access.subscriptable
                                             and base.kind in RuleHost.access.writable):
            self.report(node, _read_only(base.path, key))

    def check_call(self, node: ast.Call, shadowed: frozenset[str]) -> None:
        method = self.resolve(node.func, shadowed)
        if not isinstance(method, _Method) or method.keywords is None:
            return
        for keyword in node.keywords:
            if keyword.arg is not None and keyword.arg not in method.keywords:
                self.report(keyword, _unknown_keyword(method, keyword.arg))


def _unknown_attribute(base: _Api, name: str) -> str:
    message = f"{base.path}.{name} is not part of the rule API"
    idioms = [path for path in IDIOMS.get(f"{base.path}.{name}", ()) if _exists(path)]
    if idioms:
        return f"{message}; did you mean {' or '.join(idioms)}?"
    names = sorted(_MODEL[base.kind])
    close = _closest(name, names)
    if close is not None:
        return f"{message}; did you mean {base.path}.{close}?"
    return f"{message}; {base.path} has: {', '.join(names)}"


def _unknown_keyword(method: _Method, name: str) -> str:
    message = f"{method.path}() has no keyword argument {name!r}"
    names = sorted(method.keywords or ())
    close = _closest(name, names)
    if close is not None:
        return f"{message}; did you mean {close}?"
    return f"{message}; it takes: {', '.join(names)}" if names else f"{message}; it takes none"


def _read_only(path: str, key: str | None) -> str:
    message = f"{path} is read-only in the rule API"
    hint = WRITE_IDIOMS.get(path)
    if hint is not None and _exists(hint.split("(", 1)[0]):
        call = hint.format(key='"' + key + '"' if key else "key")
        return f"{message}; did you mean {call}?"
    return message


def _closest(name: str, names: list[str]) -> str | None:
    snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()
    if snake != name and snake in names:
        return snake
    lowered = {candidate.lower(): candidate for candidate in names}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1)
    return lowered[close[0]] if close else None


def _exists(path: str) -> bool:
    root, *names = path.split(".")
    kinds = dict(ROOTS)
    if root not in kinds:
        return False
    kind: type | None = kinds[root]
    for name in names:
        if kind is None or name not in _MODEL[kind]:
            return False
        kind = _MODEL[kind][name].api
    return True


def _simple_assignment(statement: ast.stmt) -> tuple[str | None, ast.expr | None]:
    if isinstance(statement, ast.Assign) and len(statement.targets) == 1 and isinstance(statement.targets[0], ast.Name):
        return statement.targets[0].id, statement.value
    if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
        return statement.target.id, statement.value
    return None, None


def _stored_names(targets: Iterable[ast.AST]) -> Iterator[str]:
    for target in targets:
        for node in ast.walk(target):
            if isinstance(node, ast.Name):
                yield node.id


def _bindings(function: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> Counter[str]:
    """How many times each name is bound in the function's own scope (parameters included);
    `global`/`nonlocal` count twice: such a name is never resolved."""
    arguments = function.args
    counts = Counter(a.arg for a in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs,
                                      *(a for a in (arguments.vararg, arguments.kwarg) if a is not None)))
    pending: list[ast.AST] = list(function.body) if isinstance(function.body, list) else [function.body]
    while pending:
        node = pending.pop()
        if type(node) is ast.Name:
            if type(node.ctx) is not ast.Load:
                counts[node.id] += 1
            continue
        if type(node) in _LEAVES:
            continue
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            counts[node.name] += 1
            continue
        if isinstance(node, ast.Lambda):
            continue
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            # Only an assignment expression binds in the enclosing function from inside.
            counts.update(n.target.id for n in ast.walk(node) if isinstance(n, ast.NamedExpr))
            continue
        if isinstance(node, ast.ExceptHandler) and node.name:
            counts[node.name] += 1
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            counts.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            counts.update({name: 2 for name in node.names})
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            counts[node.name] += 1
        elif isinstance(node, ast.MatchMapping) and node.rest:
            counts[node.rest] += 1
        pending.extend(ast.iter_child_nodes(node))
    return counts
