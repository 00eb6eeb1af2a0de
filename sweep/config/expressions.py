"""The small languages of config values: arithmetic in k, n, d ("5/k", "1/sqrt(d)"),
teacher widths ("6..20", "6,8,10") and student widths ("k", "k..k+2", "k,2*k")."""

import ast
import math
import operator

from .errors import ConfigError

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Pow: operator.pow,
}
_FUNCTIONS = {"sqrt": math.sqrt, "log": math.log, "exp": math.exp}


def evaluate(expression: str | float, field_name: str, **names: float) -> float:
    """Evaluate an arithmetic expression in the given names (numbers pass through)."""
    if isinstance(expression, bool):
        raise ConfigError(field_name, "a number or an expression in k", expression)
    if isinstance(expression, (int, float)):
        return expression
    expected = f"a number or an arithmetic expression in {', '.join(names) or 'numbers'}"
    if not isinstance(expression, str):
        raise ConfigError(field_name, expected, expression)

    def walk(node):
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        if isinstance(node, ast.Name) and node.id in names:
            return names[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return _BINARY[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value = walk(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _FUNCTIONS
            and len(node.args) == 1
        ):
            return _FUNCTIONS[node.func.id](walk(node.args[0]))
        raise ValueError

    try:
        return walk(ast.parse(expression.strip(), mode="eval"))
    except (SyntaxError, ValueError, TypeError, ZeroDivisionError, OverflowError):
        raise ConfigError(field_name, expected, expression) from None


def parse_k(value: str | int | list, field_name: str = "sweep.k") -> tuple[int, ...]:
    """ "6..20", "6,8,10", 6 or [6, 8] -> a sorted tuple of distinct widths >= 0."""
    expected = "a width >= 1, a range like 6..20 (low <= high) or a list like 6,8,10"
    if isinstance(value, bool):
        raise ConfigError(field_name, expected, value)
    if isinstance(value, int):
        values = [value]
    elif isinstance(value, (list, tuple)):
        if not value or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise ConfigError(field_name, expected, value)
        values = list(value)
    elif isinstance(value, str):
        values = []
        try:
            for part in value.split(","):
                if ".." in part:
                    low, high = (int(x) for x in part.split(".."))
                    if low > high:
                        raise ValueError
                    values.extend(range(low, high + 1))
                else:
                    values.append(int(part))
        except ValueError:
            raise ConfigError(field_name, expected, value) from None
    else:
        raise ConfigError(field_name, expected, value)
    if not values or min(values) < 0:  # 0: no teacher (explicit targets)
        raise ConfigError(field_name, expected, value)
    return tuple(sorted(set(values)))


def format_k(widths: tuple[int, ...]) -> str:
    """The inverse of `parse_k` for display: (6, 7, 8) -> "6..8", (6, 8) -> "6,8"."""
    if len(widths) > 2 and list(widths) == list(range(widths[0], widths[-1] + 1)):
        return f"{widths[0]}..{widths[-1]}"
    return ",".join(map(str, widths))


def widths_for(n_spec: str | int, k: int, field_name: str = "sweep.n") -> tuple[int, ...]:
    """Student widths for teacher width k: "k", "k+1", "k..k+2", "k,2*k" or an int."""
    expected = "student widths >= 1 as an expression in k: k, k+1, k..k+2 or k,2*k"
    if isinstance(n_spec, int) and not isinstance(n_spec, bool):
        n_spec = str(n_spec)
    if not isinstance(n_spec, str) or not n_spec.strip():
        raise ConfigError(field_name, expected, n_spec)
    widths = []
    for part in n_spec.split(","):
        bounds = part.split("..")
        if len(bounds) > 2:
            raise ConfigError(field_name, expected, n_spec)
        values = [evaluate(b, field_name, k=k) for b in bounds]
        if not all(float(v).is_integer() for v in values):
            raise ConfigError(field_name, expected, n_spec)
        low, high = int(values[0]), int(values[-1])
        if low > high:
            raise ConfigError(field_name, expected + " (low <= high)", n_spec)
        widths.extend(range(low, high + 1))
    if min(widths) < 1:
        raise ConfigError(field_name, expected + f" (k = {k} gives n = {min(widths)})", n_spec)
    return tuple(sorted(set(widths)))
