#!/usr/bin/env python3
"""Statically extract every CLI flag that `vllm serve` accepts from a vLLM source tree.

Python 3.11, standard library only. vLLM is never imported (torch is not needed):
the relevant modules are parsed with `ast` and the parser-building code is
interpreted symbolically:

  vllm/entrypoints/cli/serve.py    ServeSubcommand.subparser_init -> make_arg_parser
  vllm/entrypoints/openai/cli_args.py  make_arg_parser, FrontendArgs.add_cli_args
  vllm/engine/arg_utils.py         AsyncEngineArgs/EngineArgs.add_cli_args, and the
                                   type->kwargs rules of _compute_kwargs (read from
                                   the source, branch by branch)
  vllm/config/*.py (+ whatever they import) dataclass fields and type aliases
  vllm/utils/argparse_utils.py     FlexibleArgumentParser rules

Usage:
  gen-vllm-flags.py SRC_DIR RELEASE [--commit SHA] [--source OWNER/REPO@SHA] [-o OUT]

SRC_DIR may be a full or partial checkout (only the files above and the modules
they import for type aliases are needed). Files that are referenced but missing are
listed in the fixture under "unresolved" and on stderr.
"""

from __future__ import annotations

import argparse
import ast
import copy
import itertools
import json
import os
import re
import sys

GENERATOR = "scripts/gen-vllm-flags.py"

# ---------------------------------------------------------------------------
# Symbolic values
# ---------------------------------------------------------------------------


class Shared:
    """A value the interpreter shares rather than copies: copy.deepcopy returns it as is."""

    def __deepcopy__(self, memo):
        return self


class Opaque(Shared):
    """A value the interpreter cannot compute; keeps its source text."""

    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return f"Opaque({self.text!r})"


class Ext(Shared):
    """Reference to something outside the vLLM tree, e.g. `argparse.BooleanOptionalAction`."""

    def __init__(self, qualname):
        self.qualname = qualname

    def __repr__(self):
        return f"Ext({self.qualname})"

    def __eq__(self, other):
        return isinstance(other, Ext) and other.qualname == self.qualname

    def __hash__(self):
        return hash(self.qualname)


class Sym(Shared):
    """A symbolic argparse `type=`/`action=` value produced by vLLM helper code."""

    def __init__(self, kind, inner=None, text=None):
        self.kind = kind  # e.g. 'int', 'str', 'optional', 'lambda', 'parse_dataclass'
        self.inner = inner
        self.text = text

    def __repr__(self):
        return f"Sym({self.kind}, {self.inner!r})"


class ModuleRef(Shared):
    def __init__(self, name):
        self.name = name


class ClassRef(Shared):
    def __init__(self, module, node):
        self.module = module
        self.node = node
        self.name = node.name

    def __repr__(self):
        return f"ClassRef({self.module.name}.{self.name})"


class FuncRef(Shared):
    def __init__(self, module, node, owner=None, bound_cls=None, kind="function"):
        self.module = module
        self.node = node
        self.owner = owner  # ClassRef that defines it
        self.bound_cls = bound_cls  # ClassRef for cls
        self.kind = kind
        self.name = node.name if hasattr(node, "name") else "<lambda>"


class BoundMethod(Shared):
    def __init__(self, obj, name, node=None):
        self.obj = obj
        self.name = name
        self.node = node


class Group(Shared):
    def __init__(self, parser, title, mutex=False):
        self.parser = parser
        self.title = title
        self.mutex = mutex


class ParserObj(Shared):
    def __init__(self, name):
        self.name = name
        self.actions = []  # list of dicts
        self.positionals = []


# ---------------------------------------------------------------------------
# Type values (runtime type hints, as vLLM's get_type_hints would see them)
# ---------------------------------------------------------------------------


class TV(Shared):
    """kind: builtin|literal|union|annotated|generic|class|any|opaque|initvar|classvar|none"""

    def __init__(self, kind, name=None, args=(), cls=None, typing_origin=False, text=None):
        self.kind = kind
        self.name = name
        self.args = tuple(args)
        self.cls = cls
        self.typing_origin = typing_origin
        self.text = text

    def key(self):
        if self.kind in ("builtin", "none"):
            return ("b", self.name)
        if self.kind == "literal":
            return ("lit", tuple(repr(a) for a in self.args))
        if self.kind == "generic":
            return ("g", self.name, tuple(a.key() if isinstance(a, TV) else repr(a) for a in self.args))
        if self.kind == "class":
            return ("c", self.cls.module.name, self.cls.name)
        return (self.kind, self.name, self.text)

    def __eq__(self, other):
        return isinstance(other, TV) and self.key() == other.key()

    def __hash__(self):
        return hash(self.key())

    def __repr__(self):
        if self.kind == "literal":
            return f"Literal{list(self.args)}"
        if self.kind == "class":
            return f"class {self.cls.name}"
        if self.kind == "generic":
            return f"{self.name}[{', '.join(map(repr, self.args))}]"
        return f"{self.kind}:{self.name or self.text}"


NONE_T = TV("none", "NoneType")
BUILTIN_TYPES = {"bool", "int", "float", "str", "bytes", "dict", "list", "tuple", "set",
                 "frozenset", "object", "type", "complex"}
TYPING_GENERIC_ALIASES = {"Dict": "dict", "List": "list", "Tuple": "tuple", "Set": "set",
                          "FrozenSet": "frozenset", "Type": "type"}
ABC_ORIGINS = {"Callable", "Mapping", "Sequence", "Iterable", "MutableMapping", "Set",
               "Collection", "Iterator", "Awaitable", "Coroutine", "AsyncIterator"}


class ReturnSignal(Exception):
    def __init__(self, value):
        self.value = value


# ---------------------------------------------------------------------------
# Source tree and modules
# ---------------------------------------------------------------------------


def is_type_checking_test(test):
    if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
        return True
    if isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING":
        return True
    return False


class Module:
    def __init__(self, tree_obj, name, relpath, src, tree, is_pkg):
        self.T = tree_obj
        self.name = name
        self.relpath = relpath
        self.src = src
        self.tree = tree
        self.is_pkg = is_pkg
        self.bindings = {}  # name -> (kind, payload)
        self.tc_only = {}  # bound only under TYPE_CHECKING
        self._collect(tree.body, runtime=True)
        self.cache = {}

    @property
    def package(self):
        return self.name if self.is_pkg else self.name.rpartition(".")[0]

    def _bind(self, name, val, runtime):
        if runtime:
            self.bindings[name] = val
        else:
            self.tc_only.setdefault(name, val)

    def _collect(self, body, runtime):
        for st in body:
            if isinstance(st, ast.If) and is_type_checking_test(st.test):
                self._collect(st.body, runtime=False)
                self._collect(st.orelse, runtime=runtime)
            elif isinstance(st, ast.If):
                self._collect(st.body, runtime)
                self._collect(st.orelse, runtime)
            elif isinstance(st, ast.Try):
                self._collect(st.body, runtime)
                for h in st.handlers:
                    self._collect_if_unbound(h.body, runtime)
                self._collect(st.orelse, runtime)
                self._collect(st.finalbody, runtime)
            elif isinstance(st, ast.Import):
                for a in st.names:
                    if a.asname:
                        self._bind(a.asname, ("module", a.name), runtime)
                    else:
                        top = a.name.split(".")[0]
                        self._bind(top, ("module", top), runtime)
            elif isinstance(st, ast.ImportFrom):
                mod = self._abs_module(st.module, st.level)
                for a in st.names:
                    if a.name == "*":
                        continue
                    self._bind(a.asname or a.name, ("from", mod, a.name), runtime)
            elif isinstance(st, ast.ClassDef):
                self._bind(st.name, ("class", st), runtime)
            elif isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self._bind(st.name, ("func", st), runtime)
            elif isinstance(st, ast.Assign):
                for t in st.targets:
                    if isinstance(t, ast.Name):
                        self._bind(t.id, ("expr", st.value, st.lineno), runtime)
            elif isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name) and st.value is not None:
                self._bind(st.target.id, ("expr", st.value, st.lineno), runtime)

    def _collect_if_unbound(self, body, runtime):
        saved = dict(self.bindings)
        self._collect(body, runtime)
        for k, v in saved.items():
            self.bindings[k] = v

    def _abs_module(self, module, level):
        if not level:
            return module
        base = self.package.split(".")
        if level > 1:
            base = base[: len(base) - (level - 1)]
        return ".".join(base + ([module] if module else []))

    def line_of(self, node):
        return f"{self.relpath}:L{node.lineno}"


class SourceTree:
    def __init__(self, root):
        self.root = root
        self.modules = {}
        self.read_files = set()
        self.missing = {}  # module -> set of "type"/"value"
        self.phase = "value"
        self.warnings = []

    def warn(self, msg):
        if msg not in self.warnings:
            self.warnings.append(msg)

    def module_file(self, modname):
        rel = modname.replace(".", "/")
        for cand in (rel + ".py", rel + "/__init__.py"):
            if os.path.isfile(os.path.join(self.root, cand)):
                return cand
        return None

    def get(self, modname, record_missing=True):
        if modname in self.modules:
            if self.modules[modname] is None and record_missing and self.is_vllm(modname):
                self.missing.setdefault(modname, set()).add(self.phase)
            return self.modules[modname]
        rel = self.module_file(modname)
        if rel is None:
            if record_missing and self.is_vllm(modname):
                self.missing.setdefault(modname, set()).add(self.phase)
            self.modules[modname] = None
            return None
        with open(os.path.join(self.root, rel), encoding="utf-8") as f:
            src = f.read()
        tree = ast.parse(src, filename=rel)
        m = Module(self, modname, rel, src, tree, rel.endswith("__init__.py"))
        self.modules[modname] = m
        self.read_files.add(rel)
        return m

    def is_vllm(self, modname):
        return modname == "vllm" or modname.startswith("vllm.")


# ---------------------------------------------------------------------------
# Name resolution
# ---------------------------------------------------------------------------


def resolve_name(mod, name, _depth=0):
    """Return a value for a global name: ClassRef, FuncRef, ModuleRef, Ext, ('expr', mod, node) or None."""
    if _depth > 30:
        return Opaque(name)
    b = mod.bindings.get(name)
    if b is None:
        if name in mod.tc_only:
            # Only bound under TYPE_CHECKING: undefined at runtime.
            return Opaque(f"{name} (TYPE_CHECKING only)")
        if mod.is_pkg:
            sub = mod.T.get(f"{mod.name}.{name}", record_missing=False)
            if sub is not None:
                return ModuleRef(sub.name)
        return None
    kind = b[0]
    if kind == "class":
        return ClassRef(mod, b[1])
    if kind == "func":
        return FuncRef(mod, b[1])
    if kind == "expr":
        return ("expr", mod, b[1], b[2])
    if kind == "module":
        return module_ref(mod.T, b[1])
    if kind == "from":
        src_mod, attr = b[1], b[2]
        return resolve_attr_of_module(mod.T, src_mod, attr, _depth + 1)
    return None


def module_ref(T, modname):
    if T.is_vllm(modname):
        m = T.get(modname)
        if m is None:
            # maybe a namespace package dir
            if os.path.isdir(os.path.join(T.root, modname.replace(".", "/"))):
                return ModuleRef(modname)
            return Opaque(f"module {modname} (missing)")
        return ModuleRef(modname)
    return Ext(modname)


def resolve_attr_of_module(T, modname, attr, _depth=0):
    if not T.is_vllm(modname):
        return Ext(f"{modname}.{attr}")
    m = T.get(modname, record_missing=False)
    if m is None:
        sub = T.get(f"{modname}.{attr}", record_missing=False)
        if sub is not None:
            return ModuleRef(sub.name)
        T.get(modname)  # record the missing module
        return Opaque(f"{modname}.{attr} (missing file)")
    r = resolve_name(m, attr, _depth)
    if r is None:
        sub = T.get(f"{modname}.{attr}", record_missing=False)
        if sub is not None:
            return ModuleRef(sub.name)
        T.warn(f"cannot resolve {attr} in {modname}")
        return Opaque(f"{modname}.{attr}")
    return r


# ---------------------------------------------------------------------------
# Type evaluation
# ---------------------------------------------------------------------------

TYPING_MODS = {"typing", "typing_extensions"}


def ext_is(ref, *names):
    return isinstance(ref, Ext) and any(
        ref.qualname in (f"typing.{n}", f"typing_extensions.{n}", f"collections.abc.{n}",
                         f"dataclasses.{n}", f"types.{n}", f"builtins.{n}") for n in names)


class TypeEval:
    def __init__(self, T):
        self.T = T
        self.memo = {}

    def eval(self, mod, node, _stack=()):
        saved, self.T.phase = self.T.phase, "type"
        try:
            return self._eval(mod, node, _stack)
        except RecursionError:
            return TV("opaque", text=ast.unparse(node))
        finally:
            self.T.phase = saved

    def _ref_to_type(self, ref, text, _stack):
        if isinstance(ref, tuple) and ref[0] == "expr":
            _, m, node, _ln = ref
            key = (m.name, id(node))
            if key in _stack:
                return TV("opaque", text=text)
            if key not in self.memo:
                self.memo[key] = self._eval(m, node, _stack + (key,))
            return self.memo[key]
        if isinstance(ref, ClassRef):
            return TV("class", name=ref.name, cls=ref)
        if isinstance(ref, Ext):
            q = ref.qualname
            short = q.rsplit(".", 1)[-1]
            modpart = q.rsplit(".", 1)[0] if "." in q else ""
            if modpart in TYPING_MODS or modpart == "collections.abc":
                if short == "Any":
                    return TV("any", "Any")
                if short in TYPING_GENERIC_ALIASES:
                    return TV("generic", TYPING_GENERIC_ALIASES[short], (), typing_origin=True)
                return TV("special", short, text=q)
            if modpart == "dataclasses" and short in ("InitVar",):
                return TV("special", "InitVar", text=q)
            if modpart == "enum":
                return TV("special", short, text=q)
            if modpart == "collections":
                return TV("generic", short, (), typing_origin=True)  # Counter/OrderedDict/...: non-builtin
            if modpart.startswith("pydantic") and short in ("SkipValidation", "InstanceOf"):
                # pydantic: SkipValidation[X] / InstanceOf[X] evaluate to Annotated[X, ...]
                return TV("special", "Annotated", text=q)
            return TV("opaque", text=q)
        if isinstance(ref, Opaque):
            self.T.warn(f"type name not resolvable: {ref.text}")
            return TV("opaque", text=ref.text)
        return TV("opaque", text=text)

    def _eval(self, mod, node, _stack):
        if node is None:
            return NONE_T
        if isinstance(node, ast.Constant):
            if node.value is None:
                return NONE_T
            if isinstance(node.value, str):
                # string annotation: evaluate it in module context
                try:
                    sub = ast.parse(node.value, mode="eval").body
                except SyntaxError:
                    return TV("opaque", text=node.value)
                self.T.warn(f"string annotation {node.value!r} in {mod.relpath} evaluated as expression")
                return self._eval(mod, sub, _stack)
            return TV("opaque", text=repr(node.value))
        if isinstance(node, ast.Name):
            if node.id in BUILTIN_TYPES and node.id not in mod.bindings:
                return TV("builtin", node.id)
            if node.id == "None":
                return NONE_T
            ref = resolve_name(mod, node.id)
            if ref is None:
                if node.id in BUILTIN_TYPES:
                    return TV("builtin", node.id)
                self.T.warn(f"unresolved name {node.id} in {mod.relpath}")
                return TV("opaque", text=node.id)
            return self._ref_to_type(ref, node.id, _stack)
        if isinstance(node, ast.Attribute):
            base = eval_expr_static(mod, node.value)
            if isinstance(base, ModuleRef):
                ref = resolve_attr_of_module(self.T, base.name, node.attr)
                return self._ref_to_type(ref, ast.unparse(node), _stack)
            if isinstance(base, Ext):
                return self._ref_to_type(Ext(f"{base.qualname}.{node.attr}"), ast.unparse(node), _stack)
            return TV("opaque", text=ast.unparse(node))
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return make_union([self._eval(mod, node.left, _stack), self._eval(mod, node.right, _stack)])
        if isinstance(node, ast.Subscript):
            base = self._eval(mod, node.value, _stack)
            sl = node.slice
            elts = sl.elts if isinstance(sl, ast.Tuple) else [sl]
            if base.kind == "special":
                n = base.name
                if n == "Literal":
                    vals = []
                    for e in elts:
                        vals.extend(self._literal_values(mod, e, _stack))
                    # typing dedups Literal args (keeps order)
                    out = []
                    for v in vals:
                        if not any(type(v) is type(o) and v == o for o in out):
                            out.append(v)
                    return TV("literal", args=out)
                if n == "Union":
                    return make_union([self._eval(mod, e, _stack) for e in elts])
                if n == "Optional":
                    return make_union([self._eval(mod, elts[0], _stack), NONE_T])
                if n == "Annotated":
                    return TV("annotated", args=[self._eval(mod, elts[0], _stack)])
                if n == "ClassVar":
                    return TV("classvar", args=[self._eval(mod, elts[0], _stack)] if elts else [])
                if n == "InitVar":
                    return TV("initvar", args=[self._eval(mod, elts[0], _stack)])
                if n in ABC_ORIGINS:
                    return TV("generic", n, [TV("opaque", text=ast.unparse(e)) for e in elts], typing_origin=True)
                if n in ("Required", "NotRequired", "Final", "ReadOnly"):
                    return self._eval(mod, elts[0], _stack)
                return TV("generic", n, [TV("opaque", text=ast.unparse(e)) for e in elts], typing_origin=True)
            if base.kind == "builtin" and base.name in ("dict", "list", "tuple", "set", "frozenset", "type"):
                args = []
                for e in elts:
                    if isinstance(e, ast.Constant) and e.value is Ellipsis:
                        args.append(Ellipsis)
                    elif isinstance(e, ast.List):
                        args.append(TV("opaque", text=ast.unparse(e)))
                    else:
                        args.append(self._eval(mod, e, _stack))
                return TV("generic", base.name, args)
            if base.kind == "generic" and base.typing_origin and not base.args:
                args = [Ellipsis if (isinstance(e, ast.Constant) and e.value is Ellipsis)
                        else self._eval(mod, e, _stack) for e in elts]
                return TV("generic", base.name, args, typing_origin=True)
            if base.kind == "class":
                # generic user class, e.g. Foo[int] -> origin is Foo
                return base
            self.T.warn(f"unknown generic `{ast.unparse(node)}` in {mod.relpath}:L{node.lineno} treated as a non-builtin class")
            return TV("opaque", text=ast.unparse(node))
        if isinstance(node, ast.Call):
            return TV("opaque", text=ast.unparse(node))
        return TV("opaque", text=ast.unparse(node))

    def _literal_values(self, mod, e, _stack):
        if isinstance(e, ast.Constant):
            return [e.value]
        if isinstance(e, ast.UnaryOp) and isinstance(e.op, ast.USub) and isinstance(e.operand, ast.Constant):
            return [-e.operand.value]
        t = self._eval(mod, e, _stack)
        if t.kind == "literal":
            return list(t.args)  # nested Literal flattens
        if t.kind == "none":
            return [None]
        self.T.warn(f"non-constant Literal arg {ast.unparse(e)} in {mod.relpath}")
        return [Opaque(ast.unparse(e))]


def make_union(members):
    out = []
    for m in members:
        if m.kind == "union":
            out.extend(m.args)
        else:
            out.append(m)
    ded = []
    for m in out:
        if m not in ded:
            ded.append(m)
    if len(ded) == 1:
        return ded[0]
    return TV("union", args=ded)


def eval_expr_static(mod, node):
    """Minimal evaluation for attribute bases in type expressions."""
    if isinstance(node, ast.Name):
        r = resolve_name(mod, node.id)
        if r is None and node.id in ("typing", "collections"):
            return Ext(node.id)
        return r
    if isinstance(node, ast.Attribute):
        base = eval_expr_static(mod, node.value)
        if isinstance(base, ModuleRef):
            return resolve_attr_of_module(mod.T, base.name, node.attr)
        if isinstance(base, Ext):
            return Ext(f"{base.qualname}.{node.attr}")
    return None


def get_type_hints_set(tv):
    """Emulate vllm.engine.arg_utils.get_type_hints: flatten Annotated and Union."""
    out = []

    def add(t):
        if t.kind == "annotated":
            add(t.args[0])
        elif t.kind == "union":
            for a in t.args:
                add(a)
        else:
            if t not in out:
                out.append(t)

    add(tv)
    return out


# ---------------------------------------------------------------------------
# Classes: dataclass fields, enums, validators
# ---------------------------------------------------------------------------


def class_bases(cref):
    out = []
    for b in cref.node.bases:
        r = eval_expr_static(cref.module, b)
        if isinstance(b, ast.Subscript):
            r = eval_expr_static(cref.module, b.value)
        if isinstance(r, tuple) and r[0] == "expr":
            r = None
        out.append(r)
    return out


def is_dataclass_class(cref, _seen=None):
    for d in cref.node.decorator_list:
        dn = d.func if isinstance(d, ast.Call) else d
        txt = ast.unparse(dn)
        last = txt.rsplit(".", 1)[-1]
        if last in ("config", "dataclass"):
            return True
    return False


def is_enum_class(cref, _depth=0):
    if _depth > 10:
        return False
    for b in class_bases(cref):
        if isinstance(b, Ext) and b.qualname.startswith("enum."):
            return True
        if isinstance(b, ClassRef) and is_enum_class(b, _depth + 1):
            return True
    return False


def enum_members(cref):
    names = []
    for st in cref.node.body:
        if isinstance(st, ast.Assign) and len(st.targets) == 1 and isinstance(st.targets[0], ast.Name):
            n = st.targets[0].id
            if n.startswith("_"):
                continue
            names.append(n)
        elif isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name) and st.value is not None:
            if not st.target.id.startswith("_"):
                names.append(st.target.id)
    return names


def enum_values(cref):
    vals = []
    for st in cref.node.body:
        if isinstance(st, ast.Assign) and len(st.targets) == 1 and isinstance(st.targets[0], ast.Name):
            if st.targets[0].id.startswith("_"):
                continue
            try:
                vals.append(ast.literal_eval(st.value))
            except Exception:
                vals.append(ast.unparse(st.value))
    return vals


def dataclass_fields(TE, cref, _depth=0):
    """Ordered list of (name, TV, lineno, cref) like dataclasses.fields()."""
    fields = {}
    if _depth < 10:
        for b in reversed(class_bases(cref)):
            if isinstance(b, ClassRef) and is_dataclass_class(b):
                for f in dataclass_fields(TE, b, _depth + 1):
                    fields[f[0]] = f
    for st in cref.node.body:
        if isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name):
            tv = TE.eval(cref.module, st.annotation)
            if tv.kind in ("classvar", "initvar") or (tv.kind == "special" and tv.name in ("ClassVar", "KW_ONLY", "InitVar")):
                fields.pop(st.target.id, None) if tv.kind == "classvar" else None
                continue
            name = st.target.id
            if name in fields:
                fields[name] = (name, tv, st.lineno, cref)  # keeps original position
            else:
                fields[name] = (name, tv, st.lineno, cref)
    return list(fields.values())


def class_attr_node(cref, name, _depth=0):
    for st in cref.node.body:
        if isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name) and st.target.id == name:
            return cref, st
        if isinstance(st, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in st.targets):
            return cref, st
        if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef)) and st.name == name:
            return cref, st
    if _depth < 10:
        for b in class_bases(cref):
            if isinstance(b, ClassRef):
                r = class_attr_node(b, name, _depth + 1)
                if r:
                    return r
    return None


def field_validators(cref, field_name):
    """field_validator(...)-decorated methods (mode='before') that touch `field_name`."""
    out = []
    for st in cref.node.body:
        if not isinstance(st, ast.FunctionDef):
            continue
        for d in st.decorator_list:
            if isinstance(d, ast.Call) and ast.unparse(d.func).endswith("field_validator"):
                names = [a.value for a in d.args if isinstance(a, ast.Constant)]
                if field_name in names:
                    out.append(st)
    return out


# ---------------------------------------------------------------------------
# _compute_kwargs emulation (interprets the branch chain in vLLM's source)
# ---------------------------------------------------------------------------


class KwargsRules:
    """Reads `_compute_kwargs` (or older `get_kwargs`) from arg_utils.py and applies it."""

    def __init__(self, T, TE, argmod):
        self.T = T
        self.TE = TE
        self.argmod = argmod
        self.loop = None
        self.func_name = None
        for name in ("_compute_kwargs", "get_kwargs"):
            b = argmod.bindings.get(name)
            if b and b[0] == "func":
                for st in ast.walk(b[1]):
                    if isinstance(st, ast.For) and ast.unparse(st.iter).startswith("fields("):
                        self.loop = st
                        self.func_name = name
                        break
            if self.loop:
                break
        if self.loop is None:
            raise SystemExit("could not find the `for field in fields(cls)` loop in arg_utils.py")
        self.lit_src = ast.unparse(argmod.bindings["literal_to_kwargs"][1]) if "literal_to_kwargs" in argmod.bindings else ""
        self.col_src = ast.unparse(argmod.bindings["collection_to_kwargs"][1]) if "collection_to_kwargs" in argmod.bindings else ""
        if '"metavar" if contains_type(type_hints, str)' not in self.lit_src.replace("'", '"'):
            T.warn("literal_to_kwargs differs from the known form (metavar when str in hints); assuming choices=sorted(options), metavar if str present")
        self.cache = {}

    # -- type predicates (mirror arg_utils.is_type / contains_type / is_not_builtin)
    @staticmethod
    def is_type(th, tname):
        if tname == "Literal":
            return th.kind == "literal"
        if th.kind == "builtin" and th.name == tname:
            return True
        if th.kind == "generic" and th.name == tname:
            return True
        return False

    def contains(self, hints, tname):
        return any(self.is_type(h, tname) for h in hints)

    @staticmethod
    def is_not_builtin(th):
        if th.kind in ("builtin", "none"):
            return False
        if th.kind == "generic":
            return th.typing_origin  # typing.Dict[...] has __module__ 'typing'
        return True  # Literal/Any/classes/torch types/opaque

    def literal_to_kwargs(self, hints):
        lit = next(h for h in hints if h.kind == "literal")
        opts = list(lit.args)
        otype = type(opts[0]).__name__ if opts else "str"
        kw = "metavar" if self.contains(hints, "str") else "choices"
        try:
            srt = sorted(opts)
        except TypeError:
            srt = opts
        return {"type": Sym(otype), kw: srt}

    def collection_to_kwargs(self, hints, tname):
        th = next(h for h in hints if self.is_type(h, tname))
        types = list(th.args)
        elem = types[0] if types else TV("builtin", "str")
        if isinstance(elem, TV) and elem.kind == "union":
            elem = TV("builtin", "str")
        nargs = "+" if (tname != "tuple" or Ellipsis in types) else len(types)
        return {"type": elem, "nargs": nargs}

    def compute(self, cref):
        key = (cref.module.name, cref.name)
        if key in self.cache:
            return self.cache[key]
        out = {}
        for fname, tv, lineno, owner in dataclass_fields(self.TE, cref):
            hints = get_type_hints_set(tv)
            env = {"name": fname, "hints": hints, "kw": None,
                   "dataclass_cls": next((h for h in hints if h.kind == "class" and is_dataclass_class(h.cls)), None)}
            try:
                self._exec(self.loop.body, env)
            except _Unsupported as e:
                self.T.warn(f"{cref.name}.{fname}: get_kwargs would raise ({e}); field skipped")
                continue
            kw = env["kw"] or {}
            kw["__field__"] = {"class": cref.name, "field": fname, "at": f"{owner.module.relpath}:L{lineno}",
                               "hints": [repr(h) for h in hints], "cref": owner}
            out[fname] = kw
        self.cache[key] = out
        return out

    # -- statement interpreter for the loop body
    def _exec(self, body, env):
        for st in body:
            self._stmt(st, env)

    def _is_kw_name(self, node):
        # kwargs[name]
        return (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name)
                and node.value.id == "kwargs" and ast.unparse(node.slice) == "name")

    def _kw_key(self, node):
        # kwargs[name]["key"] -> "key"
        if isinstance(node, ast.Subscript) and self._is_kw_name(node.value) and isinstance(node.slice, ast.Constant):
            return node.slice.value
        return None

    def _stmt(self, st, env):
        if isinstance(st, ast.Assign):
            tgt = st.targets[0]
            if self._is_kw_name(tgt):
                env["kw"] = {"default": Opaque("default"), "help": ""}
                return
            k = self._kw_key(tgt)
            if k is not None:
                env["kw"][k] = self._val(st.value, env)
                return
            return  # local helper assignments (name, help, default, generator, ...)
        if isinstance(st, ast.AugAssign):
            return  # help text
        if isinstance(st, ast.If):
            if self._cond(st.test, env):
                self._exec(st.body, env)
            else:
                self._exec(st.orelse, env)
            return
        if isinstance(st, ast.Expr) and isinstance(st.value, ast.Call):
            c = st.value
            f = c.func
            if isinstance(f, ast.Attribute) and f.attr == "update" and self._is_kw_name(f.value):
                env["kw"].update(self._val(c.args[0], env))
                return
            if isinstance(f, ast.Attribute) and f.attr == "append":
                k = self._kw_key(f.value)
                if k is not None:
                    lst = env["kw"].get(k)
                    if isinstance(lst, list):
                        lst.append(self._val(c.args[0], env))
                    return
            return
        if isinstance(st, ast.Raise):
            raise _Unsupported(ast.unparse(st.exc)[:80] if st.exc else "raise")
        if isinstance(st, (ast.With, ast.Try)):
            self._exec(st.body, env)
            return
        # FunctionDef (parse_dataclass), Pass, etc.

    def _val(self, node, env):
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.Name, ast.Attribute)):
            txt = ast.unparse(node)
            if txt == "type_hints":
                return env["hints"]
            last = txt.rsplit(".", 1)[-1]
            if last in ("BooleanOptionalAction",):
                return Sym("BooleanOptionalAction")
            return Sym(last, text=txt)
        if isinstance(node, ast.Subscript):
            k = self._kw_key(node)
            if k is not None:
                return env["kw"].get(k)
        if isinstance(node, ast.Call):
            fn = ast.unparse(node.func)
            if fn == "literal_to_kwargs":
                a = node.args[0]
                if isinstance(a, ast.Set):
                    hints = [self._val(e, env) for e in a.elts]
                    hints = [h for h in hints if isinstance(h, TV)]
                else:
                    hints = env["hints"]
                return self.literal_to_kwargs(hints)
            if fn == "collection_to_kwargs":
                tname = ast.unparse(node.args[1])
                return self.collection_to_kwargs(env["hints"], tname)
            if fn == "optional_type":
                return Sym("optional", self._val(node.args[0], env))
            if fn == "parse_type":
                return Sym("parse_type", self._val(node.args[0], env))
            return Sym("call", text=ast.unparse(node))
        if isinstance(node, ast.Lambda):
            return Sym("lambda", text=ast.unparse(node))
        return Opaque(ast.unparse(node))

    def _typename(self, node):
        txt = ast.unparse(node)
        if txt == "type(None)":
            return "NoneType"
        return txt.rsplit(".", 1)[-1]

    def _cond(self, node, env):
        hints = env["hints"]
        txt = ast.unparse(node)
        if re.search(r"\b(field\.default|field\.default_factory|default)\b", txt) and "type_hints" not in txt:
            return False  # branches that only compute the default value
        if isinstance(node, ast.BoolOp):
            vals = (self._cond(v, env) for v in node.values)
            return all(vals) if isinstance(node.op, ast.And) else any(vals)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return not self._cond(node.operand, env)
        if isinstance(node, ast.Call):
            fn = ast.unparse(node.func)
            if fn == "contains_type":
                return self.contains(hints, self._typename(node.args[1]))
            if fn == "any" and isinstance(node.args[0], ast.GeneratorExp):
                inner = ast.unparse(node.args[0].elt)
                if inner.startswith("is_not_builtin("):
                    return any(self.is_not_builtin(h) for h in hints)
                if inner.startswith("is_dataclass("):
                    return env["dataclass_cls"] is not None
            if fn == "get_origin":
                return None
            if isinstance(node.func, ast.Attribute) and node.func.attr == "get" and self._is_kw_name(node.func.value):
                return env["kw"].get(node.args[0].value)
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            op = node.ops[0]
            left, right = node.left, node.comparators[0]
            lt = ast.unparse(left)
            if lt == "dataclass_cls" and isinstance(op, (ast.IsNot, ast.Is)):
                r = env["dataclass_cls"] is not None
                return r if isinstance(op, ast.IsNot) else not r
            if lt == "name":
                rv = ast.literal_eval(right)
                if isinstance(op, ast.Eq):
                    return env["name"] == rv
                if isinstance(op, ast.NotEq):
                    return env["name"] != rv
                if isinstance(op, ast.In):
                    return env["name"] in rv
                if isinstance(op, ast.NotIn):
                    return env["name"] not in rv
            if lt == "type_hints" and isinstance(op, (ast.Eq, ast.NotEq)) and isinstance(right, ast.Set):
                want = sorted(self._typename(e) for e in right.elts)
                have = sorted((h.name if h.kind in ("builtin", "none") else "<" + repr(h) + ">") for h in hints)
                r = want == have
                return r if isinstance(op, ast.Eq) else not r
            if isinstance(op, (ast.In, ast.NotIn)) and ast.unparse(right) == "type_hints":
                tn = self._typename(left)
                r = any(h.kind in ("builtin", "none") and h.name == tn for h in hints)
                return r if isinstance(op, ast.In) else not r
            if isinstance(op, ast.Is) and lt.startswith("get_origin(") and ast.unparse(right) == "Literal":
                t = env["kw"].get("type") if env["kw"] else None
                return isinstance(t, TV) and t.kind == "literal"
        self.T.warn(f"_compute_kwargs: unrecognised condition `{ast.unparse(node)}` treated as False")
        return False


class _Unsupported(Exception):
    pass


# ---------------------------------------------------------------------------
# Parser-building interpreter
# ---------------------------------------------------------------------------

NO_VALUE_ACTIONS = {"store_true", "store_false", "store_const", "append_const", "count", "help", "version",
                    "BooleanOptionalAction"}
PARSER_BUILDERS = {"add_cli_args", "_customize_cli_kwargs", "make_arg_parser", "subparser_init"}
SYS_ARGV = ["vllm", "serve", "MODEL"]


class Interp:
    def __init__(self, T, TE, rules):
        self.T = T
        self.TE = TE
        self.rules = rules
        self.depth = 0
        self.cond_stack = []  # enclosing `if` tests of the current statement
        self.calls = []  # trace of interpreted functions

    # ---- calling
    def call_func(self, fref, args, kwargs):
        node = fref.node
        if self.depth > 20:
            return Opaque(f"{fref.name}(...) (depth)")
        env = {}
        params = [a.arg for a in node.args.posonlyargs + node.args.args]
        is_static = any(ast.unparse(d) == "staticmethod" for d in node.decorator_list)
        is_cls = any(ast.unparse(d) == "classmethod" for d in node.decorator_list)
        pos = list(args)
        if fref.owner is not None and not is_static:
            first = params[0] if params else None
            if first:
                env[first] = fref.bound_cls if is_cls else Opaque("self")
                params = params[1:]
        defaults = node.args.defaults
        dstart = len(params) - len(defaults)
        for i, p in enumerate(params):
            if i < len(pos):
                env[p] = pos[i]
            elif p in kwargs:
                env[p] = kwargs[p]
            elif i >= dstart:
                env[p] = self.eval(fref.module, defaults[i - dstart], {})
            else:
                env[p] = Opaque(p)
        for a, d in zip(node.args.kwonlyargs, node.args.kw_defaults):
            env[a.arg] = kwargs.get(a.arg, self.eval(fref.module, d, {}) if d is not None else Opaque(a.arg))
        ctx = {"module": fref.module, "env": env, "func": fref}
        self.depth += 1
        self.calls.append(f"{fref.module.relpath}:{(fref.owner.name + '.') if fref.owner else ''}{fref.name}")
        try:
            self.exec_body(node.body, ctx)
        except ReturnSignal as r:
            return r.value
        finally:
            self.depth -= 1
        return None

    def exec_body(self, body, ctx):
        for st in body:
            self.exec_stmt(st, ctx)

    def exec_stmt(self, st, ctx):
        mod, env = ctx["module"], ctx["env"]
        if isinstance(st, ast.Expr):
            if isinstance(st.value, ast.Constant):
                return
            self.eval(mod, st.value, env, ctx)
        elif isinstance(st, ast.Assign):
            val = self.eval(mod, st.value, env, ctx)
            for t in st.targets:
                self.assign(mod, t, val, env, ctx)
        elif isinstance(st, ast.AnnAssign):
            if st.value is not None:
                self.assign(mod, st.target, self.eval(mod, st.value, env, ctx), env, ctx)
        elif isinstance(st, ast.AugAssign):
            cur = self.eval(mod, st.target, env, ctx)
            val = self.eval(mod, st.value, env, ctx)
            if isinstance(st.op, ast.Add) and isinstance(cur, list) and isinstance(val, (list, tuple)):
                cur.extend(val)  # in place, like list +=
                self.assign(mod, st.target, cur, env, ctx)
            elif isinstance(st.op, ast.Add) and isinstance(cur, str) and isinstance(val, str):
                self.assign(mod, st.target, cur + val, env, ctx)
            else:
                self.assign(mod, st.target, Opaque(ast.unparse(st)), env, ctx)
        elif isinstance(st, ast.Delete):
            for t in st.targets:
                if isinstance(t, ast.Subscript):
                    c = self.eval(mod, t.value, env, ctx)
                    k = self.eval(mod, t.slice, env, ctx)
                    if isinstance(c, dict):
                        if k in c:
                            del c[k]
                        else:
                            self.T.warn(f"{mod.relpath}:L{st.lineno}: `{ast.unparse(st)}` would raise KeyError")
                elif isinstance(t, ast.Name):
                    env.pop(t.id, None)
        elif isinstance(st, ast.If):
            cond = self.eval(mod, st.test, env, ctx)
            if isinstance(cond, Opaque) or isinstance(cond, (Ext, Sym)):
                self.T.warn(f"{mod.relpath}:L{st.lineno}: condition `{ast.unparse(st.test)}` not evaluable; taking the if-branch")
                self.exec_body(st.body, ctx)
            elif cond:
                self.cond_stack.append(f"{mod.relpath}:L{st.lineno} `{ast.unparse(st.test)}` (true for `{' '.join(SYS_ARGV)}`)")
                try:
                    self.exec_body(st.body, ctx)
                finally:
                    self.cond_stack.pop()
            else:
                self.cond_stack.append(f"{mod.relpath}:L{st.lineno} not `{ast.unparse(st.test)}` (for `{' '.join(SYS_ARGV)}`)")
                try:
                    self.exec_body(st.orelse, ctx)
                finally:
                    self.cond_stack.pop()
        elif isinstance(st, ast.For):
            it = self.eval(mod, st.iter, env, ctx)
            if isinstance(it, dict):
                it = list(it.keys())
            if not isinstance(it, (list, tuple)):
                self.T.warn(f"{mod.relpath}:L{st.lineno}: loop over `{ast.unparse(st.iter)}` not evaluable; skipped")
                return
            for item in list(it):
                self.assign(mod, st.target, item, env, ctx)
                self.exec_body(st.body, ctx)
        elif isinstance(st, ast.Return):
            raise ReturnSignal(self.eval(mod, st.value, env, ctx) if st.value else None)
        elif isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef)):
            env[st.name] = FuncRef(mod, st)
        elif isinstance(st, ast.ImportFrom):
            m = mod._abs_module(st.module, st.level)
            for a in st.names:
                env[a.asname or a.name] = self._norm_ref(resolve_attr_of_module(self.T, m, a.name))
        elif isinstance(st, ast.Import):
            for a in st.names:
                env[a.asname or a.name.split(".")[0]] = module_ref(self.T, a.name if a.asname else a.name.split(".")[0])
        elif isinstance(st, (ast.Try,)):
            self.exec_body(st.body, ctx)
            self.exec_body(st.orelse, ctx)
            self.exec_body(st.finalbody, ctx)
        elif isinstance(st, (ast.With,)):
            self.exec_body(st.body, ctx)
        elif isinstance(st, (ast.Pass, ast.Raise, ast.Assert, ast.Global, ast.Nonlocal)):
            pass
        else:
            self.T.warn(f"{mod.relpath}:L{st.lineno}: statement {type(st).__name__} ignored")

    def assign(self, mod, target, val, env, ctx):
        if isinstance(target, ast.Name):
            env[target.id] = val
        elif isinstance(target, (ast.Tuple, ast.List)):
            if isinstance(val, (list, tuple)) and len(val) == len(target.elts):
                for t, v in zip(target.elts, val):
                    self.assign(mod, t, v, env, ctx)
            else:
                for t in target.elts:
                    self.assign(mod, t, Opaque(ast.unparse(t)), env, ctx)
        elif isinstance(target, ast.Subscript):
            c = self.eval(mod, target.value, env, ctx)
            k = self.eval(mod, target.slice, env, ctx)
            if isinstance(c, (dict, list)) and not isinstance(k, (Opaque,)):
                c[k] = val
        # attributes (parser.epilog = ...) ignored

    def _norm_ref(self, r):
        if isinstance(r, tuple) and r[0] == "expr":
            _, m, node, _ln = r
            return self.eval(m, node, {})
        return r

    # ---- expressions
    def lookup(self, mod, name, env):
        if name in env:
            return env[name]
        r = resolve_name(mod, name)
        if r is not None:
            return self._norm_ref(r)
        builtins_map = {"True": True, "False": False, "None": None, "list": Ext("builtins.list"),
                        "dict": Ext("builtins.dict"), "str": Sym("str"), "int": Sym("int"),
                        "float": Sym("float"), "bool": Sym("bool"), "sorted": Ext("builtins.sorted"),
                        "len": Ext("builtins.len"), "tuple": Ext("builtins.tuple"), "set": Ext("builtins.set"),
                        "any": Ext("builtins.any"), "all": Ext("builtins.all")}
        if name in builtins_map:
            return builtins_map[name]
        return Opaque(name)

    def eval(self, mod, node, env, ctx=None):
        try:
            return self._eval(mod, node, env, ctx)
        except (ReturnSignal,):
            raise
        except Exception as e:  # keep going, record
            self.T.warn(f"{mod.relpath}:L{getattr(node, 'lineno', '?')}: could not evaluate `{ast.unparse(node)[:80]}` ({type(e).__name__}: {e})")
            return Opaque(ast.unparse(node))

    def _eval(self, mod, node, env, ctx):
        E = lambda n: self._eval(mod, n, env, ctx)  # noqa: E731
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return self.lookup(mod, node.id, env)
        if isinstance(node, ast.Attribute):
            base = E(node.value)
            return self.getattr(mod, base, node.attr, node)
        if isinstance(node, ast.Subscript):
            base = E(node.value)
            if isinstance(node.slice, ast.Slice):
                lo = E(node.slice.lower) if node.slice.lower else None
                hi = E(node.slice.upper) if node.slice.upper else None
                if isinstance(base, (list, tuple, str)):
                    return base[lo:hi]
                return Opaque(ast.unparse(node))
            k = E(node.slice)
            if isinstance(base, dict):
                if k in base:
                    return base[k]
                self.T.warn(f"{mod.relpath}:L{node.lineno}: key {k!r} missing in `{ast.unparse(node.value)}` (would raise KeyError)")
                return Opaque(ast.unparse(node))
            if isinstance(base, (list, tuple)) and isinstance(k, int):
                return base[k]
            return Opaque(ast.unparse(node))
        if isinstance(node, ast.Call):
            return self.call(mod, node, env, ctx)
        if isinstance(node, ast.Dict):
            out = {}
            for k, v in zip(node.keys, node.values):
                if k is None:
                    d = E(v)
                    if isinstance(d, dict):
                        out.update(d)
                    else:
                        out["__unpacked_opaque__"] = d
                else:
                    out[E(k)] = E(v)
            return out
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            out = []
            for e in node.elts:
                if isinstance(e, ast.Starred):
                    v = E(e.value)
                    out.extend(v if isinstance(v, (list, tuple)) else [v])
                else:
                    out.append(E(e))
            return tuple(out) if isinstance(node, ast.Tuple) else out
        if isinstance(node, ast.JoinedStr):
            parts = []
            for v in node.values:
                if isinstance(v, ast.Constant):
                    parts.append(v.value)
                else:
                    x = E(v.value)
                    if not isinstance(x, (str, int, float)):
                        return Opaque(ast.unparse(node))
                    parts.append(str(x))
            return "".join(parts)
        if isinstance(node, ast.BoolOp):
            vals = [E(v) for v in node.values]
            if any(isinstance(v, Opaque) for v in vals):
                return Opaque(ast.unparse(node))
            if isinstance(node.op, ast.And):
                r = True
                for v in vals:
                    r = v
                    if not v:
                        return v
                return r
            for v in vals:
                if v:
                    return v
            return vals[-1]
        if isinstance(node, ast.UnaryOp):
            v = E(node.operand)
            if isinstance(v, Opaque):
                return v
            if isinstance(node.op, ast.Not):
                return not v
            if isinstance(node.op, ast.USub):
                return -v
            return Opaque(ast.unparse(node))
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            l, r = E(node.left), E(node.comparators[0])
            if isinstance(l, Opaque) or isinstance(r, Opaque):
                return Opaque(ast.unparse(node))
            op = node.ops[0]
            if isinstance(op, ast.In):
                return l in r
            if isinstance(op, ast.NotIn):
                return l not in r
            if isinstance(op, ast.Eq):
                return l == r
            if isinstance(op, ast.NotEq):
                return l != r
            if isinstance(op, ast.Is):
                return l is r
            if isinstance(op, ast.IsNot):
                return l is not r
            return Opaque(ast.unparse(node))
        if isinstance(node, ast.IfExp):
            c = E(node.test)
            if isinstance(c, Opaque):
                return Opaque(ast.unparse(node))
            return E(node.body) if c else E(node.orelse)
        if isinstance(node, ast.Lambda):
            return Sym("lambda", text=ast.unparse(node))
        if isinstance(node, (ast.ListComp, ast.GeneratorExp)) and len(node.generators) == 1:
            g = node.generators[0]
            it = E(g.iter)
            if not isinstance(it, (list, tuple)):
                return Opaque(ast.unparse(node))
            out = []
            for item in it:
                sub = dict(env)
                self.assign(mod, g.target, item, sub, ctx)
                if all(self._eval(mod, c, sub, ctx) for c in g.ifs):
                    out.append(self._eval(mod, node.elt, sub, ctx))
            return out
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            l, r = E(node.left), E(node.right)
            try:
                return l + r
            except TypeError:
                return Opaque(ast.unparse(node))
        return Opaque(ast.unparse(node))

    def getattr(self, mod, base, attr, node):
        if isinstance(base, ModuleRef):
            return self._norm_ref(resolve_attr_of_module(self.T, base.name, attr))
        if isinstance(base, Ext):
            q = f"{base.qualname}.{attr}"
            if q == "sys.argv":
                return list(SYS_ARGV)
            return Ext(q)
        if isinstance(base, ClassRef):
            if attr == "__name__":
                return base.name
            if attr == "__doc__":
                return Opaque(f"{base.name}.__doc__")
            r = class_attr_node(base, attr)
            if r:
                owner, st = r
                if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    return FuncRef(owner.module, st, owner=owner, bound_cls=base)
                if isinstance(st, (ast.AnnAssign, ast.Assign)) and st.value is not None:
                    return self.eval(owner.module, st.value, {})
            return Opaque(f"{base.name}.{attr}")
        if isinstance(base, (str, dict, list, ParserObj, Group)):
            return BoundMethod(base, attr)
        if isinstance(base, Opaque):
            return Opaque(f"{base.text}.{attr}")
        if isinstance(base, tuple) and len(base) == 2 and base[0] == "super":
            # super().method -> resolve in the bases of the defining class
            owner, cls = base[1]
            for b in class_bases(owner):
                if isinstance(b, ClassRef):
                    r = class_attr_node(b, attr)
                    if r:
                        o, st = r
                        return FuncRef(o.module, st, owner=o, bound_cls=cls)
            return Opaque(f"super().{attr}")
        return Opaque(ast.unparse(node))

    def call(self, mod, node, env, ctx):
        fn_node = node.func
        if isinstance(fn_node, ast.Name) and fn_node.id == "super" and ctx is not None:
            f = ctx["func"]
            return ("super", (f.owner, f.bound_cls))
        fn = self._eval(mod, fn_node, env, ctx)
        args = []
        for a in node.args:
            if isinstance(a, ast.Starred):
                v = self._eval(mod, a.value, env, ctx)
                if isinstance(v, (list, tuple)):
                    args.extend(v)
                else:
                    args.append(Opaque("*" + ast.unparse(a.value)))
            else:
                args.append(self._eval(mod, a, env, ctx))
        kwargs = {}
        for k in node.keywords:
            v = self._eval(mod, k.value, env, ctx)
            if k.arg is None:
                if isinstance(v, dict):
                    kwargs.update(v)
                else:
                    kwargs["__unpacked_opaque__"] = v
            else:
                kwargs[k.arg] = v
        # cite the line of the first option string (what a reader greps for), else the call
        first = node.args[0] if node.args else node
        site = f"{mod.relpath}:L{getattr(first, 'lineno', node.lineno)}"

        if isinstance(fn, BoundMethod):
            return self.call_method(fn, args, kwargs, site, node)
        if isinstance(fn, FuncRef):
            if fn.name == "get_kwargs" and fn.module.name.endswith("arg_utils"):
                c = args[0] if args else None
                if isinstance(c, ClassRef):
                    return copy.deepcopy(self.rules.compute(c))
                return Opaque(ast.unparse(node))
            if fn.name == "optional_type":
                return Sym("optional", args[0] if args else None)
            if fn.name == "parse_type":
                return Sym("parse_type", args[0] if args else None)
            takes_parser = any(isinstance(a, ParserObj) for a in args) or any(
                isinstance(v, ParserObj) for v in kwargs.values())
            if fn.name in PARSER_BUILDERS or takes_parser:
                return self.call_func(fn, args, kwargs)
            return Sym(fn.name, text=ast.unparse(node))
        if isinstance(fn, Ext):
            q = fn.qualname
            if q == "builtins.list":
                return list(args[0]) if args and isinstance(args[0], (list, tuple, dict)) else Opaque(ast.unparse(node))
            if q == "builtins.sorted":
                return sorted(args[0]) if args and isinstance(args[0], (list, tuple)) else Opaque(ast.unparse(node))
            if q == "builtins.tuple":
                return tuple(args[0]) if args and isinstance(args[0], (list, tuple)) else Opaque(ast.unparse(node))
            if q == "builtins.len":
                return len(args[0]) if args and isinstance(args[0], (list, tuple, dict, str)) else Opaque(ast.unparse(node))
            if q == "builtins.dict":
                return dict(kwargs) if not args else (dict(args[0]) if isinstance(args[0], dict) else Opaque(ast.unparse(node)))
            if q in ("typing.get_args", "typing_extensions.get_args"):
                a = node.args[0]
                tv = self.TE.eval(mod, a)
                if tv.kind == "literal":
                    return tuple(tv.args)
                return Opaque(ast.unparse(node))
            if q == "itertools.permutations":
                r = kwargs.get("r", args[1] if len(args) > 1 else None)
                if isinstance(args[0], (list, tuple)) and (r is None or isinstance(r, int)):
                    return [tuple(p) for p in itertools.permutations(args[0], r)]
                return Opaque(ast.unparse(node))
            if q.endswith(".BooleanOptionalAction"):
                return Sym("BooleanOptionalAction")
            return Opaque(ast.unparse(node))
        if isinstance(fn, ClassRef):
            return Opaque(ast.unparse(node))
        if isinstance(fn, Sym):
            return Sym(fn.kind, text=ast.unparse(node))
        return Opaque(ast.unparse(node))

    def call_method(self, bm, args, kwargs, site, node):
        obj, name = bm.obj, bm.name
        if isinstance(obj, str):
            try:
                if name == "join":
                    seq = args[0]
                    if isinstance(seq, (list, tuple)) and all(isinstance(s, str) for s in seq):
                        return obj.join(seq)
                    return Opaque(ast.unparse(node))
                if all(isinstance(a, (str, int)) for a in args):
                    return getattr(obj, name)(*args)
            except Exception:
                pass
            return Opaque(ast.unparse(node))
        if isinstance(obj, dict):
            if name == "items":
                return list(obj.items())
            if name == "keys":
                return list(obj.keys())
            if name == "values":
                return list(obj.values())
            if name == "get":
                return obj.get(args[0], args[1] if len(args) > 1 else None)
            if name == "pop":
                return obj.pop(args[0], *(args[1:2]))
            if name == "update":
                if args and isinstance(args[0], dict):
                    obj.update(args[0])
                obj.update(kwargs)
                return None
            if name == "setdefault":
                return obj.setdefault(args[0], args[1] if len(args) > 1 else None)
            if name == "copy":
                return dict(obj)
            return Opaque(ast.unparse(node))
        if isinstance(obj, list):
            if name == "append":
                obj.append(args[0])
                return None
            if name == "extend":
                obj.extend(args[0] if isinstance(args[0], (list, tuple)) else [args[0]])
                return None
            return Opaque(ast.unparse(node))
        if isinstance(obj, (ParserObj, Group)):
            parser = obj if isinstance(obj, ParserObj) else obj.parser
            if name == "add_argument":
                self.register(parser, obj, args, kwargs, site)
                return Opaque("action")
            if name == "add_argument_group":
                title = kwargs.get("title", args[0] if args else None)
                return Group(parser, title if isinstance(title, str) else None)
            if name == "add_mutually_exclusive_group":
                return Group(parser, obj.title if isinstance(obj, Group) else None, mutex=True)
            if name == "set_defaults":
                return None
            return Opaque(ast.unparse(node))
        return Opaque(ast.unparse(node))

    def register(self, parser, container, args, kwargs, site):
        opts = [a for a in args if isinstance(a, str)]
        bad = [a for a in args if not isinstance(a, str)]
        if bad:
            self.T.warn(f"{site}: add_argument with non-literal option names {bad}")
        group = container.title if isinstance(container, Group) else None
        # only conditions that depend on the command line matter to a fixture reader
        rec = {"options": opts, "kwargs": kwargs, "group": group, "site": site,
               "condition": [c for c in self.cond_stack if "sys.argv" in c]}
        if opts and not opts[0].startswith("-"):
            parser.positionals.append(rec)
        else:
            parser.actions.append(rec)


def lambda_case(text):
    if not text:
        return None
    if ".upper()" in text:
        return "upper"
    if ".lower()" in text:
        return "lower"
    return None


# ---------------------------------------------------------------------------
# Post-processing into the fixture
# ---------------------------------------------------------------------------


def describe_type(t):
    if t is None:
        return "str"
    if isinstance(t, TV):
        if t.kind in ("builtin", "none"):
            return t.name
        if t.kind == "literal":
            return type(t.args[0]).__name__ if t.args else "str"
        if t.kind == "class":
            return "str"
        return "str"
    if isinstance(t, Sym):
        k = t.kind
        if k == "optional":
            return describe_type(t.inner)
        if k == "parse_type":
            inner = t.inner
            if isinstance(inner, (Sym, Ext, Opaque)) and "loads" in (getattr(inner, "text", "") or getattr(inner, "qualname", "") or getattr(inner, "kind", "")):
                return "json"
            return "json" if isinstance(inner, Ext) and inner.qualname.endswith("json.loads") else "parsed"
        if k == "parse_dataclass":
            return "json-dataclass"
        if k == "union_dict_and_str":
            return "json-or-str"
        if k in ("loads",):
            return "json"
        if k == "lambda":
            return "str"
        return k
    if isinstance(t, Ext):
        if t.qualname.endswith("json.loads"):
            return "json"
        return t.qualname
    if isinstance(t, FuncRef):
        return t.name
    if isinstance(t, Opaque):
        return "opaque"
    return "str"


def action_name(a):
    if a is None:
        return "store"
    if isinstance(a, str):
        return a
    if isinstance(a, Sym):
        return a.kind
    if isinstance(a, Ext):
        return a.qualname.rsplit(".", 1)[-1]
    if isinstance(a, ClassRef):
        return a.name
    return "custom"


def jsonable(v):
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, Opaque):
        return f"<{v.text}>"
    return str(v)


def build_flags(T, TE, parser, frontier_notes):
    flags = {}
    choice_case = {}
    choice_norm = {}
    for rec in parser.actions:
        opts = rec["options"]
        kw = rec["kwargs"]
        longs = [o for o in opts if o.startswith("--")]
        if not longs:
            T.warn(f"{rec['site']}: no long option in {opts}")
            continue
        primary = longs[0]
        aliases = [o for o in opts if o != primary]
        action = action_name(kw.get("action"))
        typ = kw.get("type")
        nargs = kw.get("nargs")
        choices = kw.get("choices")
        metavar = kw.get("metavar")
        field = kw.get("__field__")
        entry = {
            "aliases": aliases,
            "action": action,
            "group": rec["group"],
            "definedAt": rec["site"],
        }
        takes = action not in NO_VALUE_ACTIONS and nargs != 0
        entry["takesValue"] = takes
        entry["nargs"] = jsonable(nargs) if nargs is not None else None
        if nargs == "?":
            entry["valueOptional"] = True
        entry["negatable"] = action == "BooleanOptionalAction"
        if entry["negatable"]:
            entry["negatedForms"] = ["--no-" + o[2:] for o in opts if o.startswith("--")]
        if takes:
            entry["valueType"] = describe_type(typ)
            if isinstance(typ, Sym) and typ.kind == "optional":
                entry["noneStrings"] = ["", "None"]  # optional_type maps these to None
        if isinstance(choices, (list, tuple)):
            entry["choices"] = [jsonable(c) for c in choices]
        elif choices is None:
            entry["choices"] = None
        else:
            entry["choices"] = None
            entry["dynamicChoices"] = jsonable(choices)
        if isinstance(metavar, (list, tuple)):
            entry["metavarChoices"] = [jsonable(c) for c in metavar]
        if rec.get("condition"):
            entry["onlyIf"] = rec["condition"]
        if kw.get("deprecated") is True:
            entry["deprecated"] = True
        if field:
            entry["field"] = f"{field['class']}.{field['field']}"
            entry["fieldAt"] = field["at"]
            entry["fieldTypeHints"] = sorted(field["hints"])
        if kw.get("dest") and isinstance(kw.get("dest"), str):
            entry["dest"] = kw["dest"]
        if "__unpacked_opaque__" in kw:
            T.warn(f"{rec['site']}: **kwargs not evaluable for {primary}")
        # value normalisation before the choices check (argparse applies type first)
        if isinstance(typ, Sym) and typ.kind == "lambda":
            case = lambda_case(typ.text)
            if case:
                choice_case[primary] = case
                choice_norm[primary] = {"case": case, "dashToUnderscore": '.replace("-", "_")' in typ.text.replace("'", '"'),
                                        "where": f"argparse type= {typ.text} ({rec['site']})",
                                        "appliedBefore": "argparse choices check"}
        # pydantic field validators (after parsing) normalising strings / enum lookups
        if field:
            cref = field["cref"]
            for fv in field_validators(cref, field["field"]):
                src = ast.unparse(fv)
                case = "upper" if ".upper()" in src else ("lower" if ".lower()" in src else None)
                if case and primary not in choice_case:
                    choice_case[primary] = case
                    choice_norm[primary] = {"case": case,
                                            "dashToUnderscore": '.replace("-", "_")' in src.replace("'", '"'),
                                            "autoMeansNone": "'auto'" in src and "return None" in src,
                                            "where": f"{cref.name}.{fv.name} field_validator ({cref.module.relpath}:L{fv.lineno})",
                                            "appliedBefore": "pydantic validation after argparse"}
            # Enum-typed field with no argparse choices: list the names validated after parsing.
            enum_hint = None
            for h in get_type_hints_set(dataclass_field_tv(TE, cref, field["field"])):
                if h.kind == "class" and is_enum_class(h.cls):
                    enum_hint = h.cls
            if enum_hint is not None and entry.get("choices") is None:
                vsrc = " ".join(ast.unparse(fv) for fv in field_validators(cref, field["field"]))
                at = f"{enum_hint.module.relpath}:L{enum_hint.node.lineno}"
                if re.search(r"\[\s*value\.(upper|lower)\(\)\s*\]", vsrc) or f"{enum_hint.name}[" in vsrc:
                    names = enum_members(enum_hint)
                    extra = ["auto"] if choice_norm.get(primary, {}).get("autoMeansNone") else []
                    entry["postParseChoices"] = sorted(names) + extra
                    entry["postParseChoicesFrom"] = (f"{enum_hint.name} member names, looked up by the field_validator "
                                                     f"after argparse ({at})")
                else:
                    vals = enum_values(enum_hint)
                    entry["postParseChoices"] = [str(v) for v in vals]
                    entry["postParseChoicesFrom"] = (f"{enum_hint.name} values, coerced by pydantic enum validation "
                                                     f"after argparse; no name lookup ({at})")
        if primary in flags:
            T.warn(f"duplicate option {primary} at {rec['site']} (argparse would raise)")
        flags[primary] = entry
        for o in aliases:
            if o in flags:
                T.warn(f"alias {o} collides with a flag")
    return flags, choice_case, choice_norm


def dataclass_field_tv(TE, cref, name):
    for f in dataclass_fields(TE, cref):
        if f[0] == name:
            return f[1]
    return TV("opaque", text=name)


# ---------------------------------------------------------------------------
# Parser rules (FlexibleArgumentParser)
# ---------------------------------------------------------------------------


def find_line(src, needle, start=0):
    for i, line in enumerate(src.splitlines(), 1):
        if i < start:
            continue
        if needle in line:
            return i
    return None


def parser_rules(T):
    rel = None
    for cand in ("vllm/utils/argparse_utils.py", "vllm/utils/__init__.py"):
        m = T.get(cand[:-3].replace("/", ".").removesuffix(".__init__"))
        if m and "class FlexibleArgumentParser" in m.src:
            rel = m
            break
    if rel is None:
        T.warn("FlexibleArgumentParser not found")
        return {}
    src = rel.src
    path = rel.relpath
    checks = [
        ("underscoreToDash", ['match.group(0).replace("_", "-")', 're.compile(r"(?<=--)[^\\.]*")', 'key = pattern.sub(repl, key, count=1)'],
         "in every `--` argument, `_` before the first `.` (and before `=`) becomes `-`; single-dash aliases are untouched"),
        ("equalsSplit", ['key, value = arg.split("=", 1)'],
         "`--flag=value` is split on the first `=` for the name normalisation; argparse then accepts `--flag=value`"),
        ("dottedJsonArgs", ['key, *keys = processed_arg.split(".")'],
         "`--json-arg.key.sub value` (or `=value`) is merged into `--json-arg '{\"key\": {\"sub\": value}}'`; value parsed as JSON, else human-readable int, else string"),
        ("dottedListAppend", ['processed_arg.endswith("+")'],
         "`--json-arg.key+ a,b` appends list elements"),
        ("configFile", ['if "--config" in args'],
         "`--config file.yaml` inlines YAML keys as `--key value` (bool true -> bare flag, false dropped; lists -> repeated values; dicts -> JSON); CLI wins over config"),
        ("helpKeyword", ['arg.startswith("--help=")'],
         "`--help=<group|flag substring|all>`"),
        ("optimizationLevelShorthand", ['arg.startswith("-O")'],
         "`-O3`, `-O=3`, `-O 3` -> `--optimization-level 3`"),
        ("serveModelFlagToPositional", ['re.match(r"^--model(=.+|$)", arg)'],
         "`vllm serve ... --model M` is rewritten to the positional model_tag (with a deprecation warning)"),
        ("servedModelNameNeedsPositional", ["--served[-_]model[-_]name"],
         "`vllm serve --served-model-name X` without a positional model (and no --config) raises ValueError"),
        ("duplicateKeyWarning", ['logger.warning("Found duplicate keys'],
         "repeated flags only warn; argparse keeps the last value"),
        ("deprecatedKwarg", ['deprecated = kwargs.pop("deprecated", False)'],
         "add_argument(deprecated=True) is emulated on Python < 3.13 (warning when used)"),
    ]
    out = {}
    evidence = {}
    for key, needles, desc in checks:
        lines = [find_line(src, n) for n in needles]
        ok = all(lines)
        out[key] = bool(ok)
        if ok:
            evidence[key] = {"at": f"{path}:L{','.join(str(x) for x in sorted(set(lines)))}", "rule": desc}
    # abbreviations: argparse allow_abbrev defaults to True unless passed
    files = [rel] + [m for m in (T.get("vllm.entrypoints.cli.main"), T.get("vllm.entrypoints.cli.serve")) if m]
    ab = [f"{m.relpath}:L{find_line(m.src, 'allow_abbrev')}" for m in files if "allow_abbrev" in m.src]
    out["allowAbbrev"] = not ab
    evidence["allowAbbrev"] = {"at": ", ".join(ab) if ab else "no allow_abbrev in " + ", ".join(m.relpath for m in files),
                               "rule": "argparse default allow_abbrev=True: unambiguous prefixes of long flags are accepted" if not ab else "allow_abbrev set explicitly"}
    ln = find_line(src, "def check_port")
    if ln:
        evidence["checkPort"] = {"at": f"{path}:L{ln}", "rule": "FlexibleArgumentParser.check_port (1024..65535) exists but --port is a plain int field"}
    out["evidence"] = evidence
    return out


# ---------------------------------------------------------------------------
# Registries and enums
# ---------------------------------------------------------------------------


def dict_keys_literal(node):
    if isinstance(node, ast.Dict):
        return [k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)]
    return None


def registry_names(T, pkg, dict_suffix):
    m = T.get(pkg)
    if m is None:
        return None, None
    names = []
    where = []
    for st in m.tree.body:
        tgt = None
        if isinstance(st, ast.Assign) and len(st.targets) == 1 and isinstance(st.targets[0], ast.Name):
            tgt, val = st.targets[0].id, st.value
        elif isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name):
            tgt, val = st.target.id, st.value
        if tgt and tgt.endswith(dict_suffix):
            ks = dict_keys_literal(val)
            if ks is not None:
                names.extend(ks)
                where.append(f"{m.relpath}:L{st.lineno} {tgt}")
    # literal register_lazy_module(name="...") / register_module("...") calls in files present
    pkg_dir = os.path.join(T.root, pkg.replace(".", "/"))
    extra = []
    if os.path.isdir(pkg_dir):
        for fn in sorted(os.listdir(pkg_dir)):
            if not fn.endswith(".py"):
                continue
            rel = f"{pkg.replace('.', '/')}/{fn}"
            with open(os.path.join(T.root, rel), encoding="utf-8") as f:
                src = f.read()
            try:
                tr = ast.parse(src)
            except SyntaxError:
                continue
            for n in ast.walk(tr):
                if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in ("register_module", "register_lazy_module"):
                    if rel.endswith("abs_reasoning_parsers.py") or rel.endswith("abstract_tool_parser.py"):
                        continue
                    vals = []
                    for a in n.args[:1]:
                        if isinstance(a, ast.Constant) and isinstance(a.value, str):
                            vals.append(a.value)
                        elif isinstance(a, (ast.List, ast.Tuple)):
                            vals += [e.value for e in a.elts if isinstance(e, ast.Constant)]
                    for k in n.keywords:
                        if k.arg == "name" and isinstance(k.value, ast.Constant):
                            vals.append(k.value.value)
                    if vals:
                        extra.extend(vals)
                        where.append(f"{rel}:L{n.lineno} {n.func.attr}")
    allnames = sorted(set(names) | set(extra))
    return allnames, where


def literal_alias(T, TE, modname, alias):
    m = T.get(modname)
    if m is None:
        return None, None
    b = m.bindings.get(alias)
    if not b:
        return None, None
    if b[0] == "expr":
        tv = TE.eval(m, b[1])
        if tv.kind == "literal":
            return [jsonable(a) for a in tv.args], f"{m.relpath}:L{b[2]}"
        hints = get_type_hints_set(tv)
        lits = [a for h in hints if h.kind == "literal" for a in h.args]
        if lits:
            return [jsonable(a) for a in lits], f"{m.relpath}:L{b[2]}"
    if b[0] == "class":
        c = ClassRef(m, b[1])
        if is_enum_class(c):
            return enum_members(c), f"{m.relpath}:L{b[1].lineno}"
    return None, None


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------


def find_serve_entry(T):
    serve = T.get("vllm.entrypoints.cli.serve")
    if serve is not None:
        for st in serve.tree.body:
            if isinstance(st, ast.ClassDef):
                for f in st.body:
                    if isinstance(f, ast.FunctionDef) and f.name == "subparser_init":
                        return FuncRef(serve, f, owner=ClassRef(serve, st), bound_cls=ClassRef(serve, st)), "subparser_init"
    cli = T.get("vllm.entrypoints.openai.cli_args")
    if cli is not None and "make_arg_parser" in cli.bindings:
        T.warn("serve.py subparser_init not found; starting at cli_args.make_arg_parser")
        return FuncRef(cli, cli.bindings["make_arg_parser"][1]), "make_arg_parser"
    raise SystemExit("neither vllm/entrypoints/cli/serve.py nor vllm/entrypoints/openai/cli_args.py found")


class SubparsersStub:
    pass


def run(src_dir, release, commit, source):
    T = SourceTree(src_dir)
    TE = TypeEval(T)
    argmod = T.get("vllm.engine.arg_utils")
    if argmod is None:
        raise SystemExit("vllm/engine/arg_utils.py missing")
    rules = KwargsRules(T, TE, argmod)
    I = Interp(T, TE, rules)
    entry, kind = find_serve_entry(T)
    serve_parser = ParserObj("serve")

    if kind == "subparser_init":
        # self, subparsers: make subparsers.add_parser(...) return our parser
        class _Sub:
            pass
        sub = _SubparsersValue(serve_parser)
        I.call_func_with_sub = True
        # monkeypatch: treat `subparsers.add_parser` via a BoundMethod on a ParserFactory
        entry_env_args = [sub]
        _orig = I.call_method

        def call_method(bm, args, kwargs, site, node, _orig=_orig):
            if isinstance(bm.obj, _SubparsersValue) and bm.name == "add_parser":
                serve_parser.name = args[0] if args and isinstance(args[0], str) else "serve"
                return serve_parser
            return _orig(bm, args, kwargs, site, node)

        I.call_method = call_method
        _orig_getattr = I.getattr

        def getattr_(mod, base, attr, node, _o=_orig_getattr):
            if isinstance(base, _SubparsersValue):
                return BoundMethod(base, attr)
            return _o(mod, base, attr, node)

        I.getattr = getattr_
        I.call_func(entry, entry_env_args, {})
    else:
        I.call_func(entry, [serve_parser], {})

    flags, choice_case, choice_norm = build_flags(T, TE, serve_parser, None)

    # dynamic choices for parser registries
    api = T.get("vllm.entrypoints.openai.api_server")
    dyn = {
        "--tool-call-parser": ("ToolParserManager.list_registered()", "tool_call_parser"),
        "--reasoning-parser": ("ReasoningParserManager.list_registered()", "reasoning_parser"),
    }
    for flag, (what, dest) in dyn.items():
        if flag not in flags:
            continue
        e = flags[flag]
        if e.get("choices"):
            continue
        where = []
        if api is not None:
            ln = find_line(api.src, what.split("(")[0].replace("ToolParserManager", "ToolParserManager"))
            if ln:
                where.append(f"{api.relpath}:L{ln} validate_api_server_args")
        cli = T.get("vllm.entrypoints.openai.cli_args")
        if cli is not None and flag == "--tool-call-parser":
            ln = find_line(cli.src, "ToolParserManager.list_registered()")
            if ln:
                where.append(f"{cli.relpath}:L{ln} (metavar only)")
        cfg = T.get("vllm.config.reasoning")
        if cfg is not None and flag == "--reasoning-parser":
            ln = find_line(cfg.src, "get_reasoning_parser(")
            if ln:
                where.append(f"{cfg.relpath}:L{ln}")
        e["dynamicChoices"] = (f"{what}: built-in lazy registry (see registries) plus plugins "
                               f"({'--tool-parser-plugin' if 'tool' in flag else '--reasoning-parser-plugin'}); "
                               f"checked after parsing at {', '.join(where) or 'runtime'}")

    # --quantization / --load-format / --config-format: validated later
    enums = {}
    names, at = literal_alias(T, TE, "vllm.config.kernel", "MoEBackend")
    if names is not None:
        enums["moeBackend"] = {"values": names, "from": at}
    m = T.get("vllm.v1.attention.backends.registry")
    if m is not None:
        for en in ("AttentionBackendEnum", "MambaAttentionBackendEnum"):
            b = m.bindings.get(en)
            if b and b[0] == "class":
                key = "attentionBackends" if en == "AttentionBackendEnum" else "mambaAttentionBackends"
                enums[key] = {"values": enum_members(ClassRef(m, b[1])), "from": f"{m.relpath}:L{b[1].lineno} {en}"}
    for key, modname, alias in [("quantizationMethods", "vllm.model_executor.layers.quantization", "QuantizationMethods"),
                                ("loadFormats", "vllm.model_executor.model_loader", "LoadFormats"),
                                ("configFormats", "vllm.transformers_utils.config", "ConfigFormat"),
                                ("kvCacheDtypes", "vllm.config.cache", "CacheDType"),
                                ("tokenizerModes", "vllm.config.model", "TokenizerMode")]:
        names, at = literal_alias(T, TE, modname, alias)
        if names is not None:
            enums[key] = {"values": names, "from": at}
    for flag, key in (("--quantization", "quantizationMethods"), ("--load-format", "loadFormats"),
                      ("--config-format", "configFormats")):
        if flag in flags and key in enums and not flags[flag].get("choices"):
            flags[flag]["postParseChoices"] = sorted(enums[key]["values"])
            flags[flag]["postParseChoicesFrom"] = enums[key]["from"] + " (validated after parsing, not by argparse)"

    registries = {}
    rn, rw = registry_names(T, "vllm.reasoning", "_PARSERS_TO_REGISTER")
    if rn is not None:
        registries["reasoningParsers"] = rn
        registries["reasoningParsersFrom"] = rw
    tn, tw = registry_names(T, "vllm.tool_parsers", "_PARSERS_TO_REGISTER")
    if tn is None:
        tn, tw = registry_names(T, "vllm.entrypoints.openai.tool_parsers", "_PARSERS_TO_REGISTER")
    if tn is not None:
        registries["toolParsers"] = tn
        registries["toolParsersFrom"] = tw

    positionals = []
    for rec in serve_parser.positionals:
        kw = rec["kwargs"]
        positionals.append({"name": rec["options"][0], "nargs": jsonable(kw.get("nargs")), "definedAt": rec["site"]})

    out = {
        "release": release,
        "commit": commit,
        "source": source,
        "generator": GENERATOR,
        "subcommand": serve_parser.name,
        "positionals": positionals,
        "parser": parser_rules(T),
        "flags": flags,
        "flagCount": len(flags),
        "choiceCase": choice_case,
        "choiceNormalise": choice_norm,
        "enums": enums,
        "registries": registries,
        "interpreted": I.calls,
        "filesRead": sorted(T.read_files),
        "unresolved": [{"module": k, "neededFor": sorted(v),
                        "effect": ("a type alias/class could not be read: choices may be missing"
                                   if "type" in v else "runtime value only (plugins, platform hooks, "
                                   "help text, registries' manager class); does not change the flag set")}
                       for k, v in sorted(T.missing.items())],
        "warnings": sorted(T.warnings),
    }
    return out


class _SubparsersValue(Shared):
    def __init__(self, parser):
        self.parser = parser


def strip_private(o):
    if isinstance(o, dict):
        return {k: strip_private(v) for k, v in o.items() if not k.startswith("__")}
    if isinstance(o, list):
        return [strip_private(x) for x in o]
    return o


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src_dir")
    ap.add_argument("release")
    ap.add_argument("--commit", help="defaults to the contents of SRC_DIR/COMMIT")
    ap.add_argument("--source", help="e.g. vllm-project/vllm@<commit>")
    ap.add_argument("-o", "--output", help="write here instead of stdout")
    a = ap.parse_args(argv)
    commit = a.commit
    if not commit:
        p = os.path.join(a.src_dir, "COMMIT")
        commit = open(p).read().strip() if os.path.isfile(p) else None
    source = a.source or (f"vllm-project/vllm@{commit}" if commit else None)
    out = strip_private(run(a.src_dir, a.release, commit, source))
    text = json.dumps(out, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if a.output:
        with open(a.output, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    for w in out["unresolved"]:
        print(f"unresolved module: {w['module']} (needed for {', '.join(w['neededFor'])})", file=sys.stderr)
    print(f"{out['flagCount']} flags, {len(out['warnings'])} warnings, {len(out['unresolved'])} unresolved modules",
          file=sys.stderr)


if __name__ == "__main__":
    main()
