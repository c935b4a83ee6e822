"""A small subset of Go's text/template, enough for docker's --format flags.

Supported: `{{.A.B}}`, `{{.}}`, `{{$.A}}`, string/number/bool literals, pipes (`{{.X | json}}`),
parentheses, `{{if}}`/`{{with}}`/`{{range}}` with `{{else}}` and `{{end}}`, trim markers
(`{{-`, `-}}`), comments, and the functions json, index, join, split, upper, lower, title,
len, print, println, printf, eq, ne, not, and, or, truncate.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple


class TemplateError(ValueError):
    pass


class _Missing:
    """A map key that is not there: Go prints `<no value>`."""

    def __repr__(self) -> str:
        return "<no value>"


MISSING: Any = _Missing()


# -- values --------------------------------------------------------------------------------------


def go_float(value: float) -> str:
    """Go's %v for a float64: shortest digits, exponent form below 1e-4 or from 1e21."""
    if value != value or value in (float("inf"), float("-inf")):
        return {"nan": "NaN", "inf": "+Inf", "-inf": "-Inf"}[repr(value)]
    if value == int(value) and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    if "e" in text:
        mantissa, exp = text.split("e")
        return f"{mantissa}e{int(exp):+03d}"
    return text


def go_str(value: Any) -> str:
    """How Go's fmt prints a JSON-decoded value with %v."""
    if value is MISSING:
        return "<no value>"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_str(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_str(value[k])}" for k in sorted(value)) + "]"
    return str(value)


def go_json(value: Any) -> str:
    """Go's json.Marshal: compact, with <, > and & escaped."""
    text = json.dumps(None if value is MISSING else value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def truth(value: Any) -> bool:
    if value is MISSING or value is None:
        return False
    return bool(value)


def _type_name(value: Any) -> str:
    names = {str: "string", int: "int", float: "float64", bool: "bool", list: "[]interface {}"}
    return names.get(type(value), type(value).__name__)


def lookup(obj: Any, name: str) -> Any:
    """`.Name` on a JSON object: exact key first, then case-insensitively (events use `id`)."""
    if obj is MISSING or obj is None:
        return MISSING
    if not isinstance(obj, dict):
        raise TemplateError(f"can't evaluate field {name} in type {_type_name(obj)}")
    if name in obj:
        return obj[name]
    lowered = name.lower()
    for key, value in obj.items():
        if isinstance(key, str) and key.lower() == lowered:
            return value
    return MISSING


# -- functions -----------------------------------------------------------------------------------


def _index(value: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(value, dict):
            value = value.get(key, MISSING)
        elif isinstance(value, list | str) and isinstance(key, int):
            if not 0 <= key < len(value):
                raise TemplateError(f"error calling index: index out of range: {key}")
            value = value[key]
        elif value is MISSING or value is None:
            return MISSING
        else:
            raise TemplateError(f"error calling index: can't index item of type {_type_name(value)}")
    return value


def _sprint(*args: Any) -> str:
    # Go's Sprint puts a space between operands when neither is a string.
    out = ""
    for i, arg in enumerate(args):
        if i and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out += " "
        out += go_str(arg)
    return out


def _printf(fmt: str, *args: Any) -> str:
    values = iter(args)

    def verb(m: re.Match[str]) -> str:
        if m.group(0) == "%%":
            return "%"
        value = next(values, MISSING)
        return json.dumps(go_str(value)) if m.group(1) == "q" else go_str(value)

    return re.sub(r"%%|%[-+# 0-9.]*([vsdqtfg])", verb, fmt)


def _truncate(value: Any, length: int) -> str:
    return go_str(value)[:length]


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "json": go_json,
    "index": _index,
    "join": lambda items, sep: sep.join(go_str(i) for i in (items or [])),
    "split": lambda text, sep: text.split(sep),
    "upper": lambda v: go_str(v).upper(),
    "lower": lambda v: go_str(v).lower(),
    "title": lambda v: go_str(v).title(),
    "len": lambda v: len(v) if v not in (None, MISSING) else 0,
    "print": _sprint,
    "println": lambda *a: " ".join(go_str(v) for v in a) + "\n",
    "printf": _printf,
    "eq": lambda a, *b: any(a == x for x in b),
    "ne": lambda a, b: a != b,
    "not": lambda v: not truth(v),
    "and": lambda *a: next((v for v in a if not truth(v)), a[-1]),
    "or": lambda *a: next((v for v in a if truth(v)), a[-1]),
    "truncate": _truncate,
}


# -- syntax tree ---------------------------------------------------------------------------------


class Const(NamedTuple):
    value: Any


class Field(NamedTuple):
    path: list[str]
    from_root: bool = False


class Func(NamedTuple):
    name: str


class Command(NamedTuple):
    args: list[Any]


class Pipeline(NamedTuple):
    commands: list[Command]


class Block(NamedTuple):
    kind: str  # "if", "with" or "range"
    pipeline: Pipeline
    body: list[Any]
    otherwise: list[Any]


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>"(?:[^"\\]|\\.)*")
    | (?P<raw>`[^`]*`)
    | (?P<lp>\() | (?P<rp>\)) | (?P<pipe>\|)
    | (?P<root>\$(?:\.[A-Za-z0-9_]+)*)
    | (?P<field>(?:\.[A-Za-z0-9_]+)+|\.)
    | (?P<num>-?\d+(?:\.\d+)?)
    | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise TemplateError(f"unexpected {text[pos:].strip()[:10]!r} in command")
        kind = m.lastgroup or ""
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> str:
        return self.tokens[self.pos][0] if self.pos < len(self.tokens) else ""

    def pipeline(self) -> Pipeline:
        commands = [self.command()]
        while self.peek() == "pipe":
            self.pos += 1
            commands.append(self.command())
        return Pipeline(commands)

    def command(self) -> Command:
        args = []
        while self.peek() not in ("", "pipe", "rp"):
            args.append(self.operand())
        if not args:
            raise TemplateError("missing value for command")
        return Command(args)

    def operand(self) -> Any:
        kind, text = self.tokens[self.pos]
        self.pos += 1
        if kind == "str":
            return Const(json.loads(text))
        if kind == "raw":
            return Const(text[1:-1])
        if kind == "num":
            return Const(float(text) if "." in text else int(text))
        if kind == "field":
            return Field([] if text == "." else text[1:].split("."))
        if kind == "root":
            return Field([p for p in text[1:].split(".") if p], from_root=True)
        if kind == "lp":
            inner = self.pipeline()
            if self.peek() != "rp":
                raise TemplateError("unclosed left paren")
            self.pos += 1
            return inner
        if kind == "ident":
            if text in ("true", "false"):
                return Const(text == "true")
            if text == "nil":
                return Const(None)
            if text not in FUNCTIONS:
                raise TemplateError(f'function "{text}" not defined')
            return Func(text)
        raise TemplateError(f"unexpected {text!r} in operand")


def _parse_action(text: str) -> Pipeline:
    parser = _Parser(_tokenize(text))
    pipeline = parser.pipeline()
    if parser.pos != len(parser.tokens):
        raise TemplateError(f"unexpected {parser.tokens[parser.pos][1]!r} in command")
    return pipeline


_ACTION = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.DOTALL)


def parse(text: str) -> Template:
    """Parse a template; raises TemplateError with a message like Go's."""
    # Split into text and actions, applying trim markers to the neighbouring text.
    pieces: list[tuple[str, str]] = []
    pos, trim_next = 0, False
    for m in _ACTION.finditer(text):
        chunk = text[pos : m.start()]
        if trim_next:
            chunk = chunk.lstrip()
        if m.group(1):
            chunk = chunk.rstrip()
        pieces.append(("text", chunk))
        pieces.append(("action", m.group(2).strip()))
        pos, trim_next = m.end(), bool(m.group(3))
    tail = text[pos:]
    if "{{" in tail:
        raise TemplateError("unclosed action")
    pieces.append(("text", tail.lstrip() if trim_next else tail))

    root: list[Any] = []
    stack: list[tuple[Block | None, list[Any]]] = [(None, root)]
    for kind, content in pieces:
        block, nodes = stack[-1]
        if kind == "text":
            if content:
                nodes.append(content)
            continue
        word = content.split(None, 1)[0] if content else ""
        if content.startswith("/*"):
            continue
        if word in ("if", "with", "range"):
            new = Block(word, _parse_action(content[len(word) :]), [], [])
            nodes.append(new)
            stack.append((new, new.body))
        elif content == "else":
            if block is None or nodes is block.otherwise:
                raise TemplateError("unexpected {{else}}")
            stack[-1] = (block, block.otherwise)
        elif content == "end":
            if block is None:
                raise TemplateError("unexpected {{end}}")
            stack.pop()
        elif word in ("else", "define", "template", "block", "break", "continue"):
            raise TemplateError(f"{{{{{content}}}}} is not supported")
        else:
            nodes.append(_parse_action(content))
    if len(stack) > 1:
        raise TemplateError("unexpected EOF")
    return Template(root)


# -- evaluation ----------------------------------------------------------------------------------


class Template:
    def __init__(self, nodes: list[Any]) -> None:
        self.nodes = nodes

    def render(self, data: Any) -> str:
        out: list[str] = []
        self._run(self.nodes, data, data, out)
        return "".join(out)

    def _run(self, nodes: Sequence[Any], dot: Any, root: Any, out: list[str]) -> None:
        for node in nodes:
            if isinstance(node, str):
                out.append(node)
            elif isinstance(node, Pipeline):
                out.append(go_str(self._pipeline(node, dot, root)))
            else:
                self._block(node, dot, root, out)

    def _block(self, block: Block, dot: Any, root: Any, out: list[str]) -> None:
        value = self._pipeline(block.pipeline, dot, root)
        if block.kind == "range":
            items = [value[k] for k in sorted(value)] if isinstance(value, dict) else value
            if truth(items) and not isinstance(items, list | tuple):
                raise TemplateError(f"range can't iterate over {go_str(value)}")
            for item in items or []:
                self._run(block.body, item, root, out)
            if not truth(items):
                self._run(block.otherwise, dot, root, out)
        elif truth(value):
            self._run(block.body, value if block.kind == "with" else dot, root, out)
        else:
            self._run(block.otherwise, dot, root, out)

    def _pipeline(self, pipeline: Pipeline, dot: Any, root: Any) -> Any:
        value: Any = MISSING
        for i, command in enumerate(pipeline.commands):
            value = self._command(command, dot, root, piped=(value,) if i else ())
        return value

    def _command(self, command: Command, dot: Any, root: Any, piped: tuple[Any, ...]) -> Any:
        first, rest = command.args[0], command.args[1:]
        if isinstance(first, Func):
            args = [self._operand(a, dot, root) for a in rest] + list(piped)
            try:
                return FUNCTIONS[first.name](*args)
            except TemplateError:
                raise
            except (TypeError, ValueError, AttributeError, LookupError) as e:
                raise TemplateError(f"error calling {first.name}: {e}") from e
        if rest or piped:
            raise TemplateError("can't give argument to non-function")
        return self._operand(first, dot, root)

    def _operand(self, arg: Any, dot: Any, root: Any) -> Any:
        if isinstance(arg, Const):
            return arg.value
        if isinstance(arg, Field):
            value = root if arg.from_root else dot
            for name in arg.path:
                value = lookup(value, name)
            return value
        if isinstance(arg, Pipeline):
            return self._pipeline(arg, dot, root)
        raise TemplateError(f"{arg.name} is a function, not a value")


def render(text: str, data: Any) -> str:
    return parse(text).render(data)
