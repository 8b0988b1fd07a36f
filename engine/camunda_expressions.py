"""Camunda's expression language (JUEL: ``${…}`` and ``#{…}``) translated into our restricted Python.

Camunda Modeler writes gateway conditions such as ``${approved}``, ``${!approved}``, ``${amount > 1000}`` or
``${status == 'ok' && amount <= 500}``. SpiffWorkflow evaluates conditions as Python, so at deploy we
translate the common subset and refuse the rest with a message a designer can act on:

- variables (names of the case's data), numbers, strings in ``'…'`` or ``"…"``, ``true``, ``false``, ``null``;
- comparisons ``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=`` (also JUEL's ``eq ne lt le gt ge``);
- ``!`` / ``not``, ``&&`` / ``and``, ``||`` / ``or``, parentheses.

Method calls, property paths (``invoice.amount``), arithmetic, ``empty`` and the ternary operator are
outside the subset. The result is plain Python and goes through ``engine.restricted.check_code`` like
every other expression.
"""

import keyword
import re

MAX_LENGTH = 2000
MAX_DEPTH = 32

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<number>\d+(?:\.\d+)?)(?![\w.])
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<op>==|!=|<=|>=|&&|\|\||[<>!()])
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
""", re.VERBOSE)
_WORD_OPS = {"and": "&&", "or": "||", "not": "!", "eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">",
             "ge": ">="}
_LITERALS = {"true": "True", "false": "False", "null": "None"}
_COMPARISONS = {"==", "!=", "<", "<=", ">", ">="}
_WRAPPED = re.compile(r"^\s*[$#]\{(.*)\}\s*$", re.DOTALL)


class ExpressionUnsupported(Exception):
    """The expression is outside the subset we translate; the message says what to write instead."""


def is_camunda_expression(text):
    return "${" in text or "#{" in text


def translate(text):
    """The restricted-Python equivalent of the Camunda expression ``text`` (``${…}`` or ``#{…}``)."""
    shown = " ".join(text.split())
    if len(text) > MAX_LENGTH:
        raise ExpressionUnsupported(f"the expression is longer than {MAX_LENGTH} characters")
    match = _WRAPPED.match(text)
    if not match or is_camunda_expression(match.group(1)):
        raise ExpressionUnsupported(f"expression {shown!r}: only one ${{…}} around the whole condition is "
                                    "supported, not text around or between expressions")
    try:
        parser = _Parser(_tokens(match.group(1)))
        python = parser.disjunction(0)
        if parser.peek() is not None:
            raise ExpressionUnsupported(f"unexpected {parser.peek()[1]!r}")
    except ExpressionUnsupported as exc:
        raise ExpressionUnsupported(
            f"expression {shown!r} uses Camunda's expression language beyond the subset we run ({exc}). "
            "Supported: variables, "
            "numbers, 'strings', true/false/null, == != < <= > >=, ! not, && and, || or, parentheses") from None
    return python


def _tokens(source):
    tokens, pos = [], 0
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        if match is None:
            raise ExpressionUnsupported(f"{source[pos:pos + 12]!r} is not supported")
        kind, value = match.lastgroup, match.group()
        pos = match.end()
        if kind == "space":
            continue
        if kind == "name" and value in _WORD_OPS:
            kind, value = "op", _WORD_OPS[value]
        elif kind == "name" and value in _LITERALS:
            kind, value = "literal", _LITERALS[value]
        elif kind == "name" and (keyword.iskeyword(value) or value.startswith("_")):
            raise ExpressionUnsupported(f"the variable name {value!r} cannot be used here (a reserved word or a "
                                        "leading '_'): rename the variable")
        elif kind == "string":
            value = repr(re.sub(r"\\(.)", r"\1", value[1:-1]))
        if kind == "name" and pos < len(source) and source[pos] in ".([":
            raise ExpressionUnsupported(f"property paths and method calls ({value}{source[pos]}…) are not supported")
        tokens.append((kind, value))
    return tokens


class _Parser:
    """Recursive descent over the subset: || below && below one comparison below ! below an operand."""

    def __init__(self, tokens):
        self.tokens, self.pos = tokens, 0

    def peek(self):
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self):
        token = self.peek()
        if token is None:
            raise ExpressionUnsupported("the expression ends too early")
        self.pos += 1
        return token

    def disjunction(self, depth):
        if depth > MAX_DEPTH:
            raise ExpressionUnsupported("nested too deeply")
        parts = [self.conjunction(depth)]
        while self.peek() == ("op", "||"):
            self.take()
            parts.append(self.conjunction(depth))
        return " or ".join(parts)

    def conjunction(self, depth):
        parts = [self.comparison(depth)]
        while self.peek() == ("op", "&&"):
            self.take()
            parts.append(self.comparison(depth))
        return " and ".join(parts)

    def comparison(self, depth):
        left = self.negation(depth)
        token = self.peek()
        if token and token[0] == "op" and token[1] in _COMPARISONS:
            self.take()
            return f"{left} {token[1]} {self.negation(depth)}"
        return left

    def negation(self, depth):
        # JUEL's ! binds tighter than a comparison (!a == b is (!a) == b): keep that with parentheses
        if self.peek() == ("op", "!"):
            self.take()
            if depth > MAX_DEPTH:
                raise ExpressionUnsupported("nested too deeply")
            return f"(not {self.negation(depth + 1)})"
        return self.operand(depth)

    def operand(self, depth):
        kind, value = self.take()
        if (kind, value) == ("op", "("):
            inner = self.disjunction(depth + 1)
            if self.take() != ("op", ")"):
                raise ExpressionUnsupported("a '(' is not closed")
            return f"({inner})"
        if kind in ("name", "number", "string", "literal"):
            return value
        raise ExpressionUnsupported(f"unexpected {value!r}")
