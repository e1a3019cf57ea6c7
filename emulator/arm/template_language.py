"""The ARM template language subset DevTest Labs VM templates use: parsing and evaluating ``[...]`` expressions.

Pure (no I/O). ``templates`` checks a whole template (parameters, variables, resources, outputs) with it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_FUNCTIONS_HELP = "Please see https://aka.ms/arm-functions for usage details."
_EXPRESSIONS_HELP = "Please see https://aka.ms/arm-template-expressions for usage details."
#: Functions ARM has that the local Azure does not evaluate (named as "not supported", not "not found").
_KNOWN_ELSEWHERE = frozenset(
    (  # noqa: SIM905 - a long list of names, wrapped
        "uniquestring reference list listkeys deployment environment guid utcnow format tolower toupper "
        "substring replace if equals string int bool length copyindex split take skip first last json "
        "createarray createobject union contains empty not and or base64 uri tenant managementgroup "
        "subscriptionresourceid tenantresourceid extensionresourceid providers pickzones newguid true false "
        "null"
    ).split()
)


class TemplateError(Exception):
    """A template ARM refuses (``InvalidTemplate``); ``message`` is ARM's wording."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Scope:
    """Where the deployment runs: what ``resourceGroup()``, ``subscription()`` and ``resourceId()`` answer."""

    subscription_id: str
    resource_group: str
    location: str
    tenant_id: str = ""
    subscription_name: str = ""


# -- parsing -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Literal:
    """A string or integer literal."""

    value: Any


@dataclass(frozen=True)
class FunctionCall:
    """A call ``name(args…)`` followed by property or index accesses."""

    name: str
    args: tuple[Node, ...]
    accessors: tuple[Node | str, ...] = ()


Node = Literal | FunctionCall

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>-?\d+)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<punct>[(),.\[\]]))"
)


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None:
            raise TemplateError(
                f"The template language expression '{text}' is not valid: the character '{text[pos:].strip()[0]}' "
                f"at position '{pos}' is not expected. {_EXPRESSIONS_HELP}"
            )
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.pos = 0

    def fail(self, what: str) -> TemplateError:
        return TemplateError(
            f"The template language expression '{self.text}' is not valid: {what}. {_EXPRESSIONS_HELP}"
        )

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, value: str) -> None:
        token = self.peek()
        if token is None or token[1] != value:
            found = "the end of the expression" if token is None else f"'{token[1]}'"
            raise self.fail(f"expected '{value}' but found {found}")
        self.pos += 1

    def parse(self) -> Node:
        if not self.tokens:
            raise self.fail("the expression is empty")
        node = self.expression()
        if self.peek() is not None:
            raise self.fail(f"unexpected '{self.tokens[self.pos][1]}' after the expression")
        return node

    def expression(self) -> Node:
        token = self.peek()
        if token is None:
            raise self.fail("an expression was expected")
        kind, value = token
        self.pos += 1
        if kind == "string":
            return Literal(value[1:-1].replace("''", "'"))
        if kind == "number":
            return Literal(int(value))
        if kind != "name":
            raise self.fail(f"unexpected '{value}'")
        self.take("(")
        args: list[Node] = []
        if self.peek() != ("punct", ")"):
            args.append(self.expression())
            while self.peek() == ("punct", ","):
                self.pos += 1
                args.append(self.expression())
        self.take(")")
        return FunctionCall(value, tuple(args), self.accessors())

    def accessors(self) -> tuple[Node | str, ...]:
        result: list[Node | str] = []
        while (token := self.peek()) is not None and token[1] in {".", "["}:
            self.pos += 1
            if token[1] == ".":
                name = self.peek()
                if name is None or name[0] != "name":
                    raise self.fail("a property name was expected after '.'")
                self.pos += 1
                result.append(name[1])
            else:
                result.append(self.expression())
                self.take("]")
        return tuple(result)


def parse_expression(text: str) -> Node:
    """Parse the inside of a ``[...]`` template expression."""
    return _Parser(text).parse()


def is_expression(value: str) -> bool:
    """Tell whether a template string is an expression (``[...]``, not an escaped ``[[...``)."""
    return value.startswith("[") and value.endswith("]") and not value.startswith("[[")


# -- evaluation --------------------------------------------------------------------------------------


@dataclass
class Context:
    """What expressions of one deployment see: scope, parameter values and (lazily evaluated) variables."""

    scope: Scope
    parameters: dict[str, Any]
    variables: dict[str, Any]
    _resolved: dict[str, Any] = field(default_factory=dict)
    _resolving: list[str] = field(default_factory=list)

    def parameter(self, name: Any) -> Any:
        """Return a parameter's value (``parameters()``)."""
        return self.parameters[_declared(self.parameters, name, "parameter")]

    def variable(self, name: Any) -> Any:
        """Return a variable's value (``variables()``), evaluating it (and those it uses) once."""
        key = _declared(self.variables, name, "variable")
        if key in self._resolved:
            return self._resolved[key]
        if key in self._resolving:
            chain = " -> ".join([*self._resolving[self._resolving.index(key) :], key])
            raise TemplateError(f"The template variable '{key}' refers to itself ({chain}). {_EXPRESSIONS_HELP}")
        self._resolving.append(key)
        try:
            value = evaluate_value(self.variables[key], self)
        finally:
            self._resolving.pop()
        self._resolved[key] = value
        return value


def find_key(mapping: dict[str, Any], name: Any) -> str | None:
    if not isinstance(name, str):
        return None
    return next((key for key in mapping if key.lower() == name.lower()), None)


def _declared(mapping: dict[str, Any], name: Any, kind: str) -> str:
    """Return the key ``name`` finds in a template's parameters or variables; raise naming it otherwise."""
    key = find_key(mapping, name)
    if key is None:
        raise TemplateError(
            f"The template {kind} '{name}' is not found. Please see https://aka.ms/arm-syntax-{kind}s "
            "for usage details."
        )
    return key


def _concat(args: list[Any], _ctx: Context) -> Any:
    if args and all(isinstance(arg, list) for arg in args):
        return [item for arg in args for item in arg]
    if any(isinstance(arg, dict | list) for arg in args):
        raise TemplateError(f"The template function 'concat' expects strings or arrays, not a mix. {_FUNCTIONS_HELP}")
    return "".join(str(arg).lower() if isinstance(arg, bool) else str(arg) for arg in args)


def _resource_id(args: list[Any], ctx: Context) -> str:
    if not all(isinstance(arg, str) for arg in args):
        raise TemplateError(f"The template function 'resourceId' expects string arguments. {_FUNCTIONS_HELP}")
    type_index = next((i for i, arg in enumerate(args) if "/" in arg), None)
    if type_index is None or type_index > 2:
        raise TemplateError(
            f"The template function 'resourceId' needs a fully qualified resource type such as "
            f"'Microsoft.DevTestLab/labs'. {_FUNCTIONS_HELP}"
        )
    subscription = args[0] if type_index == 2 else ctx.scope.subscription_id
    group = args[type_index - 1] if type_index >= 1 else ctx.scope.resource_group
    namespace, *types = args[type_index].split("/")
    names = args[type_index + 1 :]
    if not types or len(names) != len(types):
        raise TemplateError(
            f"Unable to evaluate template language function 'resourceId': the type '{args[type_index]}' requires "
            f"'{len(types)}' resource name argument(s). {_FUNCTIONS_HELP}"
        )
    path = "/".join(f"{kind}/{name}" for kind, name in zip(types, names, strict=True))
    return f"/subscriptions/{subscription}/resourceGroups/{group}/providers/{namespace}/{path}"


def _resource_group(args: list[Any], ctx: Context) -> dict[str, Any]:
    scope = ctx.scope
    return {
        "id": f"/subscriptions/{scope.subscription_id}/resourceGroups/{scope.resource_group}",
        "name": scope.resource_group,
        "type": "Microsoft.Resources/resourceGroups",
        "location": scope.location,
        "properties": {"provisioningState": "Succeeded"},
    }


def _subscription(args: list[Any], ctx: Context) -> dict[str, Any]:
    scope = ctx.scope
    return {
        "id": f"/subscriptions/{scope.subscription_id}",
        "subscriptionId": scope.subscription_id,
        "tenantId": scope.tenant_id,
        "displayName": scope.subscription_name or scope.subscription_id,
    }


def _one_arg(name: str, method: Callable[[Context, Any], Any]) -> Callable[[list[Any], Context], Any]:
    def call(args: list[Any], ctx: Context) -> Any:
        if len(args) != 1:
            raise TemplateError(
                f"Unable to evaluate template language function '{name}': it expects 1 argument, "
                f"got {len(args)}. {_FUNCTIONS_HELP}"
            )
        return method(ctx, args[0])

    return call


def _no_args(name: str, method: Callable[[list[Any], Context], Any]) -> Callable[[list[Any], Context], Any]:
    def call(args: list[Any], ctx: Context) -> Any:
        if args:
            raise TemplateError(
                f"Unable to evaluate template language function '{name}': it expects no argument. {_FUNCTIONS_HELP}"
            )
        return method(args, ctx)

    return call


_FUNCTIONS: dict[str, Callable[[list[Any], Context], Any]] = {
    "parameters": _one_arg("parameters", Context.parameter),
    "variables": _one_arg("variables", Context.variable),
    "concat": _concat,
    "resourceid": _resource_id,
    "resourcegroup": _no_args("resourceGroup", _resource_group),
    "subscription": _no_args("subscription", _subscription),
}


def _access(value: Any, accessor: Any) -> Any:
    if isinstance(value, dict) and isinstance(accessor, str):
        key = find_key(value, accessor)
        if key is None:
            raise TemplateError(
                f"The language expression property '{accessor}' doesn't exist, available properties are "
                f"'{', '.join(value)}'. {_EXPRESSIONS_HELP}"
            )
        return value[key]
    if isinstance(value, list) and isinstance(accessor, int) and not isinstance(accessor, bool):
        if not 0 <= accessor < len(value):
            raise TemplateError(
                f"The language expression index '{accessor}' is out of bounds (length {len(value)}). "
                f"{_EXPRESSIONS_HELP}"
            )
        return value[accessor]
    raise TemplateError(f"The language expression property '{accessor}' cannot be evaluated. {_EXPRESSIONS_HELP}")


def evaluate_node(node: Node, ctx: Context) -> Any:
    """Evaluate a parsed expression."""
    if isinstance(node, Literal):
        return node.value
    function = _FUNCTIONS.get(node.name.lower())
    if function is None:
        if node.name.lower() in _KNOWN_ELSEWHERE:
            raise TemplateError(
                f"The template function '{node.name}' is not supported by the local Azure (it evaluates "
                f"parameters, variables, concat, resourceId, resourceGroup and subscription). {_FUNCTIONS_HELP}"
            )
        raise TemplateError(f"The template function '{node.name}' is not found. {_FUNCTIONS_HELP}")
    value = function([evaluate_node(arg, ctx) for arg in node.args], ctx)
    for accessor in node.accessors:
        key = accessor if isinstance(accessor, str) else evaluate_node(accessor, ctx)
        value = _access(value, key)
    return value


def evaluate_string(text: str, ctx: Context) -> Any:
    """Evaluate one template string: an expression, an escaped ``[[`` literal, or plain text."""
    if is_expression(text):
        return evaluate_node(parse_expression(text[1:-1]), ctx)
    if text.startswith("[["):
        return text[1:]
    return text


def evaluate_value(value: Any, ctx: Context) -> Any:
    """Evaluate every string of a JSON value, deeply (object keys are not evaluated)."""
    if isinstance(value, str):
        return evaluate_string(value, ctx)
    if isinstance(value, dict):
        return {key: evaluate_value(item, ctx) for key, item in value.items()}
    if isinstance(value, list):
        return [evaluate_value(item, ctx) for item in value]
    return value
