"""Turn untrusted source into a restricted code object, or into a list of "Line N: ..." errors.

RestrictedPython does the heavy lifting; `_RulePolicy` narrows it further:
- no classes, `global`, `nonlocal`, `with`, `except*`: none is needed by a rule and each
  widens what guards must think about (metaclasses, shared scopes, context managers,
  CVE-2025-22153);
- `import re` and `from datetime import timedelta as td` become plain assignments from
  `_import_("re")` and `_import_("datetime", "timedelta")`, which hand out the pre-imported
  facades and their members: no import machinery runs for a rule. Any other module or name,
  a relative or a star import is refused here, with its line;
- every loop body, function body and comprehension item calls `_tick_()`, so the step
  budget and the deadline are checked even in code that never returns;
- `*`, `**` and `<<` go through `_mul_`, `_pow_` and `_lshift_`, which refuse results
  larger than the limits (`'a' * 10**10` fails before it allocates); `%` goes through
  `_mod_`, which sizes printf-style string formatting before it builds it (formatting.py);
- `+`, `|` and `^` go through `_add_`, `_or_` and `_xor_`; f-strings through
  `_join_fields_`, which measures the formatted fields before it joins them; unpacking in
  list, tuple and set displays and in calls (`[*a, *b]`, `f(*a, *b)`) through `_splat_`,
  and in dict displays (`{**a, **b}`) through `_merge_`; a slice assignment's target through
  `_write_slice_` (growth.py: `s = s + s` doubles, whatever bound each operand meets);
- f-string format specs are literal text with small numbers, for the same reason, and every
  f-string field goes through `_format_`, which gives objects neutral text (no addresses)
  and bounds date formats;
- a bare `except:` becomes `except Exception:`, and `return`, `break`, `continue` and
  `yield` cannot leave a `finally:` block, so budget errors cannot be swallowed;
- `yield` cannot stand inside a `try` that has a `finally:`: a generator suspended there
  runs its `finally:` block when it is collected, which may be during a later evaluation,
  outside that rule's trace, checkpoint and budget.
"""

from __future__ import annotations

import ast
import difflib
import re
import symtable
from collections.abc import Iterable
from dataclasses import dataclass
from types import CodeType
from typing import cast

from RestrictedPython.compile import compile_restricted_exec
from RestrictedPython.transformer import RestrictingNodeTransformer

from sandbox import ledger
from sandbox.formatting import MAX_WIDTH_DIGITS

# Trojan Source (CVE-2021-42574): bidirectional controls make code read differently
# from how it runs; a reviewer must see what executes.
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# PEP 263: a coding cookie would let the file be decoded as something other than UTF-8.
_CODING_COOKIE = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*[-\w.]+", re.MULTILINE)

_GUARDED_OPERATORS = {ast.Mult: "_mul_", ast.Pow: "_pow_", ast.LShift: "_lshift_", ast.Mod: "_mod_",
                      ast.Add: "_add_", ast.BitOr: "_or_", ast.BitXor: "_xor_"}
# A format spec's width and precision allocate (f"{'':>{10**9}}" is a gigabyte), as the
# str.ljust and format() the ledger denies do: specs must be literal, numbers this short
# (the cap str.format and % check at run time).
_MAX_FORMAT_DIGITS = MAX_WIDTH_DIGITS
# Global names a rule may use without defining them: the ledger's builtins and modules,
# and `print`/`printed`, which RestrictedPython rewrites to the trace collector.
AVAILABLE_NAMES = frozenset(ledger.ALLOWED_BUILTINS) | frozenset(ledger.MODULE_MEMBERS) | {"print", "printed"}
_MODULE_NAMES = list(ledger.MODULE_MEMBERS)
IMPORTABLE = f"rules may import only {', '.join(_MODULE_NAMES[:-1])} and {_MODULE_NAMES[-1]}"
# Names a rule author may reach for to import something: the message says how rules import.
_IMPORT_FUNCTIONS = frozenset({"__import__", "importlib"})


@dataclass(frozen=True, slots=True)
class CompiledProgram:
    name: str
    code: CodeType
    summary: str


@dataclass(frozen=True, slots=True)
class CompileErrors:
    name: str
    errors: tuple[str, ...]


def compile_program(
    source: bytes | str, name: str, *, entry: str = "rule", arity: int = 2, max_source_bytes: int = 65_536
) -> CompiledProgram | CompileErrors:
    """Compile `source` that must define `def <entry>(<arity> positional parameters)`.

    Never raises for bad input: every rejection, including a RecursionError or MemoryError
    from the parser on pathological source, comes back as CompileErrors.
    """
    try:
        text = _decode(source, max_source_bytes)
        if isinstance(text, list):
            return CompileErrors(name, tuple(text))
        tree = ast.parse(text, filename=name)
        errors = _check_entry(tree, entry, arity) + _check_free_names(tree, text, name, AVAILABLE_NAMES)
        if errors:
            return CompileErrors(name, tuple(errors))
        result = compile_restricted_exec(tree, filename=name, policy=_RulePolicy)
    except SyntaxError as exc:
        return CompileErrors(name, (f"Line {exc.lineno}: SyntaxError: {exc.msg}",))
    except (RecursionError, MemoryError):
        return CompileErrors(name, ("Line 1: source is nested too deeply to compile",))
    except Exception as exc:  # the compiler itself failed: reject, never crash the caller
        return CompileErrors(name, (f"Line 1: cannot compile: {type(exc).__name__}",))
    if result.errors or result.code is None:
        return CompileErrors(name, tuple(result.errors) or ("Line 1: cannot compile",))
    return CompiledProgram(name, result.code, ast.get_docstring(tree) or "")


def _decode(source: bytes | str, max_source_bytes: int) -> str | list[str]:
    raw = source.encode("utf-8", "surrogatepass") if isinstance(source, str) else source
    if len(raw) > max_source_bytes:
        return [f"Line 1: source is {len(raw)} bytes; the limit is {max_source_bytes}"]
    head = b"\n".join(raw.splitlines()[:2])
    if _CODING_COOKIE.search(head):
        return ["Line 1: coding declarations are not allowed; rules are UTF-8"]
    try:
        text = raw.decode("utf-8", "strict")
    except UnicodeDecodeError as exc:
        line_number = raw[: exc.start].count(b"\n") + 1
        return [f"Line {line_number}: source is not valid UTF-8"]
    errors = []
    for number, line in enumerate(text.split("\n"), start=1):
        if "\x00" in line:
            errors.append(f"Line {number}: NUL character in source")
        if _BIDI_CONTROLS.intersection(line):
            errors.append(f"Line {number}: bidirectional control character in source")
    return errors or text.removeprefix("\ufeff")


def _check_entry(tree: ast.Module, entry: str, arity: int) -> list[str]:
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == entry:
            args = node.args
            positional = len(args.posonlyargs) + len(args.args)
            if positional != arity or args.vararg or args.kwarg or args.kwonlyargs:
                return [f"Line {node.lineno}: {entry}() must take exactly {arity} positional parameters"]
            return []
    return [f"Line 1: the file must define a top-level function {entry}()"]


def _check_free_names(tree: ast.Module, text: str, name: str, available: frozenset[str]) -> list[str]:
    """Report names used but defined nowhere: `open`, `eval`, `getattr` fail here, not at run time."""
    module = symtable.symtable(text, name, "exec")
    defined = {symbol.get_name() for symbol in module.get_symbols()
               if symbol.is_assigned() or symbol.is_imported() or symbol.is_namespace()}
    missing = {symbol for table in _tables(module) for symbol in _global_references(table)} - defined - available
    errors = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in missing:
            how = f"; {IMPORTABLE}, with import statements" if node.id in _IMPORT_FUNCTIONS else ""
            errors.append(f"Line {node.lineno}: name {node.id!r} is not available to rules{how}")
            missing.discard(node.id)
    return errors


def _tables(table: symtable.SymbolTable) -> Iterable[symtable.SymbolTable]:
    yield table
    for child in table.get_children():
        yield from _tables(child)


def _global_references(table: symtable.SymbolTable) -> Iterable[str]:
    for symbol in table.get_symbols():
        if symbol.is_referenced() and (symbol.is_global() or table.get_type() == "module"):
            yield symbol.get_name()


def _finally_escapes(node: ast.AST, in_loop: bool) -> Iterable[ast.AST]:
    """Statements that would leave a `finally:` block early, discarding the exception in flight.

    A loop inside the block keeps its own `break` and `continue`; nested functions are
    their own scopes.
    """
    if isinstance(node, (ast.Return, ast.Yield, ast.YieldFrom)):
        yield node
    elif isinstance(node, (ast.Break, ast.Continue)):
        if not in_loop:
            yield node
    elif isinstance(node, (ast.For, ast.While)):
        for child in node.body:
            yield from _finally_escapes(child, True)
        for child in node.orelse:
            yield from _finally_escapes(child, in_loop)
    elif isinstance(node, ast.Try):
        # Its own finally block is checked when the compiler visits that `try`.
        parts: tuple[ast.AST, ...] = (*node.body, *node.handlers, *node.orelse)
        for part in parts:
            yield from _finally_escapes(part, in_loop)
    elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
        for nested in ast.iter_child_nodes(node):
            yield from _finally_escapes(nested, in_loop)


def _suspends(node: ast.AST) -> Iterable[ast.AST]:
    """`yield` statements in `node`'s own scope (nested functions are their own scopes)."""
    if isinstance(node, (ast.Yield, ast.YieldFrom)):
        yield node
    elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
        for nested in ast.iter_child_nodes(node):
            yield from _suspends(nested)


def _offer(name: str, module: str, members: dict[str, object]) -> str:
    """A suggestion for a misspelled name, or the names the module offers."""
    close = difflib.get_close_matches(name.lstrip("_"), sorted(members), n=1)
    if close:
        return f" (did you mean '{close[0]}'?)"
    return f": {module} offers {', '.join(sorted(members))}"


def _call(guard: str, *arguments: ast.expr) -> ast.Call:
    return ast.Call(func=ast.Name(guard, ast.Load()), args=list(arguments), keywords=[])


def _splat_parts(elements: list[ast.expr]) -> list[ast.expr]:
    """`a, b, *c, d` as `(a, b)`, `c`, `(d,)`: the parts `_splat_` concatenates, in order."""
    parts: list[ast.expr] = []
    run: list[ast.expr] = []
    for element in elements:
        if isinstance(element, ast.Starred):
            if run:
                parts.append(ast.Tuple(run, ast.Load()))
                run = []
            parts.append(element.value)
        else:
            run.append(element)
    if run:
        parts.append(ast.Tuple(run, ast.Load()))
    return parts


def _has_starred(elements: list[ast.expr]) -> bool:
    return any(isinstance(element, ast.Starred) for element in elements)


def _tick_call() -> ast.Expr:
    return ast.Expr(ast.Call(func=ast.Name("_tick_", ast.Load()), args=[], keywords=[]))


class _RulePolicy(RestrictingNodeTransformer):
    def visit_Module(self, node: ast.Module) -> ast.AST:
        # Nodes this policy inserts carry no positions of their own.
        return ast.fix_missing_locations(cast(ast.Module, super().visit_Module(node)))

    def _reject(self, node: ast.AST, what: str) -> None:
        self.error(node, f"{what} are not allowed in rules.")

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        self._reject(node, "Class definitions")
        return node

    def visit_Import(self, node: ast.Import) -> ast.AST | list[ast.stmt]:
        refused = [alias.name for alias in node.names if alias.name not in ledger.MODULE_MEMBERS]
        if refused:
            self.error(node, f"import of '{refused[0]}' is not allowed in rules; {IMPORTABLE}")
            return node
        return [self._bind(node, alias.asname or alias.name, alias.name, None) for alias in node.names]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.AST | list[ast.stmt]:
        module = node.module or ""
        if node.level:
            self.error(node, f"relative imports are not allowed in rules; {IMPORTABLE}")
            return node
        if module not in ledger.MODULE_MEMBERS:
            self.error(node, f"import of '{module}' is not allowed in rules; {IMPORTABLE}")
            return node
        members = ledger.MODULE_MEMBERS[module]
        if any(alias.name == "*" for alias in node.names):
            self.error(node, f"'from {module} import *' is not allowed in rules: name what you import; {IMPORTABLE}")
            return node
        unknown = [alias.name for alias in node.names if alias.name not in members]
        if unknown:
            self.error(node, f"cannot import '{unknown[0]}' from {module} in rules"
                             f"{_offer(unknown[0], module, members)}; {IMPORTABLE}")
            return node
        return [self._bind(node, alias.asname or alias.name, module, alias.name) for alias in node.names]

    def _bind(self, node: ast.stmt, target: str, module: str, member: str | None) -> ast.stmt:
        """`target = _import_(module[, member])`: the facade or its member, as pre-imported."""
        self.check_name(node, target)  # `import re as _getattr_` would replace a guard
        arguments: list[ast.expr] = [ast.Constant(module)]
        if member is not None:
            arguments.append(ast.Constant(member))
        call = ast.Call(func=ast.Name("_import_", ast.Load()), args=arguments, keywords=[])
        return ast.copy_location(ast.Assign(targets=[ast.Name(target, ast.Store())], value=call), node)

    def visit_Global(self, node: ast.Global) -> ast.AST:
        self._reject(node, "Global statements")
        return node

    def visit_With(self, node: ast.With) -> ast.AST:
        self._reject(node, "With statements")
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        if node.name.startswith("_"):
            self.error(node, f'"{node.name}" is an invalid function name because it starts with "_"')
        node = cast(ast.FunctionDef, super().visit_FunctionDef(node))
        node.body.insert(0, ast.copy_location(_tick_call(), node))
        return node

    def visit_arg(self, node: ast.arg) -> ast.AST:
        # Defence in depth for CVE-2026-55830: a parameter named `_getattr_` would
        # shadow the guard inside that function, whatever kind of parameter it is.
        if node.arg.startswith("_"):
            self.error(node, f'"{node.arg}" is an invalid parameter name because it starts with "_"')
        return cast(ast.AST, super().visit_arg(node))

    def visit_Lambda(self, node: ast.Lambda) -> ast.AST:
        # A lambda body is a function body: `f = lambda n: n and (f(n-1), f(n-1))` must meet
        # the budget too. `_tick_()` returns True, so `_tick_() and body` is `body`.
        node = cast(ast.Lambda, super().visit_Lambda(node))
        tick = ast.Call(func=ast.Name("_tick_", ast.Load()), args=[], keywords=[])
        node.body = ast.copy_location(ast.BoolOp(op=ast.And(), values=[tick, node.body]), node.body)
        return node

    def visit_Try(self, node: ast.Try) -> ast.AST:
        # `finally: return` (or break, continue, yield) would swallow DeadlineExceeded and
        # report a rule that ran out of budget as "ok" (PEP 765).
        for statement in node.finalbody:
            for escape in _finally_escapes(statement, in_loop=False):
                name = type(escape).__name__.lower().replace("yieldfrom", "yield from")
                self.error(escape, f'"{name}" cannot leave a finally block in rules.')
        if node.finalbody:
            guarded: tuple[ast.AST, ...] = (*node.body, *node.handlers, *node.orelse)
            for part in guarded:
                for suspension in _suspends(part):
                    self.error(suspension, '"yield" inside a try block with a finally clause is not allowed in '
                                           "rules: the finally block would run when the generator is collected.")
        return cast(ast.AST, super().visit_Try(node))

    def visit_FormattedValue(self, node: ast.FormattedValue) -> ast.AST:
        spec = node.format_spec
        spec_text = ""
        if isinstance(spec, ast.JoinedStr):
            if not all(isinstance(part, ast.Constant) for part in spec.values):
                self.error(node, "Format specs in f-strings must be literal text in rules.")
                return node
            spec_text = "".join(str(cast(ast.Constant, part).value) for part in spec.values)
            if any(len(number.lstrip("0")) > _MAX_FORMAT_DIGITS for number in re.findall(r"\d+", spec_text)):
                self.error(node, f"Format widths and precisions over {_MAX_FORMAT_DIGITS} digits "
                                 "are not allowed in rules.")
        node = cast(ast.FormattedValue, super().visit_FormattedValue(node))
        # f"{value!r:>10}" becomes f"{_format_(value, ord('r'), '>10')}": the guard renders it.
        field = ast.Call(func=ast.Name("_format_", ast.Load()),
                         args=[node.value, ast.Constant(node.conversion), ast.Constant(spec_text)], keywords=[])
        return ast.copy_location(ast.FormattedValue(value=ast.copy_location(field, node.value), conversion=-1,
                                                    format_spec=None), node)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.AST:
        # CPython joins an f-string's fields in C: twenty thousand fields of a long string fit
        # in the source limit. A format spec (literal text only) stays as it is.
        node = cast(ast.JoinedStr, super().visit_JoinedStr(node))
        if not any(isinstance(part, ast.FormattedValue) for part in node.values):
            return node
        parts = [part.value if isinstance(part, ast.FormattedValue) else part for part in node.values]
        return ast.copy_location(_call("_join_fields_", *parts), node)

    def visit_List(self, node: ast.List) -> ast.AST:
        return self._splat(cast(ast.List, super().visit_List(node)), "list")

    def visit_Tuple(self, node: ast.Tuple) -> ast.AST:
        return self._splat(cast(ast.Tuple, super().visit_Tuple(node)), "tuple")

    def visit_Set(self, node: ast.Set) -> ast.AST:
        return self._splat(cast(ast.Set, super().visit_Set(node)), "set")

    def _splat(self, node: ast.List | ast.Tuple | ast.Set, kind: str) -> ast.AST:
        if isinstance(node, (ast.List, ast.Tuple)) and not isinstance(node.ctx, ast.Load):
            return node  # `a, *rest = value` unpacks through _iter_unpack_sequence_
        if not _has_starred(node.elts):
            return node
        return ast.copy_location(_call("_splat_", ast.Constant(kind), *_splat_parts(node.elts)), node)

    def visit_Dict(self, node: ast.Dict) -> ast.AST:
        node = cast(ast.Dict, super().visit_Dict(node))
        if all(key is not None for key in node.keys):
            return node
        # `{k: v, **a}` as `_merge_({k: v}, a)`: pairs and mappings in order, so evaluation
        # order and which value wins are CPython's.
        parts: list[ast.expr] = []
        keys: list[ast.expr | None] = []
        values: list[ast.expr] = []
        for key, value in zip(node.keys, node.values):
            if key is None:
                if keys:
                    parts.append(ast.Dict(keys, values))
                    keys, values = [], []
                parts.append(value)
            else:
                keys.append(key)
                values.append(value)
        if keys:
            parts.append(ast.Dict(keys, values))
        return ast.copy_location(_call("_merge_", *parts), node)

    def visit_Call(self, node: ast.Call) -> ast.AST:
        node = cast(ast.Call, super().visit_Call(node))
        if not _has_starred(node.args):
            return node
        # The arguments tuple is built by `_splat_` and unpacked once more by the call.
        function, positional = (node.args[:1], node.args[1:]) \
            if isinstance(node.func, ast.Name) and node.func.id == "_apply_" else ([], node.args)
        splat = _call("_splat_", ast.Constant("arguments"), *_splat_parts(positional))
        node.args = [*function, ast.copy_location(ast.Starred(splat, ast.Load()), node)]
        return node

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        is_slice_store = isinstance(node.ctx, ast.Store) and isinstance(node.slice, ast.Slice)
        node = cast(ast.Subscript, super().visit_Subscript(node))
        if is_slice_store and isinstance(node.value, ast.Call):
            node.value.func = ast.copy_location(ast.Name("_write_slice_", ast.Load()), node.value.func)
        return node

    def visit_For(self, node: ast.For) -> ast.AST:
        node = cast(ast.For, super().visit_For(node))
        node.body.insert(0, ast.copy_location(_tick_call(), node))
        return node

    def visit_While(self, node: ast.While) -> ast.AST:
        node = cast(ast.While, super().visit_While(node))
        node.body.insert(0, ast.copy_location(_tick_call(), node))
        return node

    def visit_comprehension(self, node: ast.comprehension) -> ast.AST:
        node = cast(ast.comprehension, super().visit_comprehension(node))
        tick = ast.Call(func=ast.Name("_tick_", ast.Load()), args=[], keywords=[])
        node.ifs.insert(0, ast.copy_location(tick, node.iter))
        return node

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> ast.AST:
        if node.type is None:
            node.type = ast.copy_location(ast.Name("Exception", ast.Load()), node)
        return cast(ast.AST, super().visit_ExceptHandler(node))

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        node = cast(ast.BinOp, super().visit_BinOp(node))
        guard = _GUARDED_OPERATORS.get(type(node.op))
        if guard is None:
            return node
        call = ast.Call(func=ast.Name(guard, ast.Load()), args=[node.left, node.right], keywords=[])
        return ast.copy_location(call, node)
