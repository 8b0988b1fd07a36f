"""FEEL in Camunda decision tables, translated at deploy into the restricted Python SpiffWorkflow evaluates.

SpiffWorkflow 3.2.0's DMN engine (``SpiffWorkflow.dmn.engine.DMNEngine``) evaluates every input cell as a
Python expression in which ``?`` stands for the input value (``? < 5``, ``4 < ? < 6``), and every output
cell as a Python expression. Camunda Modeler writes FEEL. The common unary tests are translated here:

=======================  ==========================================
FEEL input cell          Python (``?`` is the input value)
=======================  ==========================================
``-`` or empty           no condition (any value)
``< 5`` ``<= 5`` …       ``? < 5`` ``? <= 5`` …
``[250..1000]``          ``(250 <= ? and ? <= 1000)``; ``]1..5[`` and ``(1..5)`` exclude the ends
``"a"`` ``5`` ``true``   ``? == 'a'`` ``? == 5`` ``? == True``
``"a","b"`` ``1,2,3``    ``(? == 'a') or (? == 'b')``
``not("a","b")``         ``not ((? == 'a') or (? == 'b'))``
=======================  ==========================================

Values are numbers, ``"strings"``, ``true``/``false``/``null`` and names of case variables. Output cells are
one such value (or empty). Anything else — functions, arithmetic, dates, paths, ``?`` itself — raises
``FeelUnsupported`` with the supported list; the caller refuses the upload naming file, line, rule and cell.
The translation is plain Python and still goes through ``engine.restricted.check_code``.
"""

import keyword
import re

MAX_LENGTH = 2000
INPUT = "?"  # SpiffWorkflow's placeholder for the input value

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<range>\.\.)
  | (?P<number>-?\d+(?:\.\d+)?)(?!\w)(?!\.\d)
  | (?P<string>"[^"\\\n?']*")
  | (?P<op><=|>=|<|>|=|!=)
  | (?P<punct>[\[\]\(\),])
  | (?P<name>[A-Za-z][A-Za-z0-9_]*)
""", re.VERBOSE)
_LITERALS = {"true": "True", "false": "False", "null": "None"}
SUPPORTED = ("supported in decision tables: - (any), < <= > >= with a value, ranges [a..b] ]a..b[ (a..b), "
             "lists of values separated by commas, not(…), values: numbers, \"strings\", true, false, null and "
             "variable names")


class FeelUnsupported(Exception):
    """The cell is outside the FEEL subset we translate."""


def translate_input(text):
    """Python for the FEEL unary tests ``text`` of an input cell, or None for "any value" (``-``, empty)."""
    text = (text or "").strip()
    if text in ("", "-"):
        return None
    tokens = _tokens(text)
    negate = False
    if tokens[:2] == [("name", "not"), ("punct", "(")] and tokens[-1] == ("punct", ")"):
        negate, tokens = True, tokens[2:-1]
        if not tokens:
            raise FeelUnsupported("not() needs at least one test")
    tests = [_test(part) for part in _split(tokens)]
    python = tests[0] if len(tests) == 1 else " or ".join(f"({t})" for t in tests)
    return f"not ({python})" if negate else python


def translate_output(text):
    """Python for the FEEL output cell ``text`` (one value), or "" for an empty cell."""
    text = (text or "").strip()
    if not text:
        return ""
    tokens = _tokens(text)
    if len(tokens) != 1:
        raise FeelUnsupported("an output cell holds one value")
    return _value(tokens[0])


def _tokens(source):
    if len(source) > MAX_LENGTH:
        raise FeelUnsupported(f"the cell is longer than {MAX_LENGTH} characters")
    tokens, pos = [], 0
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        if match is None:
            raise FeelUnsupported(f"{source[pos:pos + 12]!r} is not supported")
        pos = match.end()
        if match.lastgroup != "space":
            tokens.append((match.lastgroup, match.group()))
    return tokens


def _split(tokens):
    """Comma-separated tests (commas inside a range's brackets do not occur in the subset)."""
    parts, current = [], []
    for token in tokens:
        if token == ("punct", ","):
            parts.append(current)
            current = []
        else:
            current.append(token)
    parts.append(current)
    if any(not p for p in parts):
        raise FeelUnsupported("an empty test between commas")
    return parts


def _value(token):
    kind, value = token
    if kind == "number":
        return value
    if kind == "string":
        return repr(value[1:-1])
    if kind == "name":
        if value in _LITERALS:
            return _LITERALS[value]
        if keyword.iskeyword(value) or value in ("not", "dmninputexpr"):
            raise FeelUnsupported(f"{value!r} cannot be used as a value here")
        return value
    raise FeelUnsupported(f"{value!r} is not a value")


def _test(tokens):
    first = tokens[0]
    if first[0] == "op":
        if len(tokens) != 2:
            raise FeelUnsupported("a comparison takes one value, e.g. < 250")
        op = "==" if first[1] == "=" else first[1]
        if op == "!=":
            raise FeelUnsupported("!= is not a FEEL unary test: write not(value)")
        return f"{INPUT} {op} {_value(tokens[1])}"
    if first in (("punct", "["), ("punct", "]"), ("punct", "(")):
        if len(tokens) != 5 or tokens[2] != ("range", "..") or tokens[4][1] not in ("]", "[", ")"):
            raise FeelUnsupported("a range is written [low..high], ]low..high[ or (low..high)")
        low = ">=" if first[1] == "[" else ">"
        high = "<=" if tokens[4][1] == "]" else "<"
        return f"{INPUT} {low} {_value(tokens[1])} and {INPUT} {high} {_value(tokens[3])}"
    if len(tokens) != 1:
        raise FeelUnsupported(" ".join(v for _, v in tokens) + " is not a supported test")
    return f"{INPUT} == {_value(first)}"


def checkable(python):
    """The translated cell with ``?`` replaced as SpiffWorkflow does, for ``engine.restricted.check_code``."""
    return python.replace(INPUT, "dmninputexpr")
