"""The ARM template language subset DevTest Labs VM templates use: expressions, parameters, variables, outputs.

Pure (no I/O): ``evaluate_template`` turns a template and its deployment parameters into the resources and outputs
to deploy, or raises ``TemplateError`` with the message ARM's ``InvalidTemplate`` would carry.
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
    name.lower()
    for name in (
        "uniqueString",
        "reference",
        "list",
        "listKeys",
        "deployment",
        "environment",
        "guid",
        "utcNow",
        "format",
        "toLower",
        "toUpper",
        "substring",
        "replace",
        "if",
        "equals",
        "string",
        "int",
        "bool",
        "length",
        "copyIndex",
        "split",
        "take",
        "skip",
        "first",
        "last",
        "json",
        "createArray",
        "createObject",
        "union",
        "contains",
        "empty",
        "not",
        "and",
        "or",
        "base64",
        "uri",
        "tenant",
        "managementGroup",
        "subscriptionResourceId",
        "tenantResourceId",
        "extensionResourceId",
        "providers",
        "pickZones",
        "newGuid",
        "true",
        "false",
        "null",
    )
)
_PARAMETER_TYPES = {
    "string": str,
    "securestring": str,
    "int": int,
    "bool": bool,
    "object": dict,
    "secureobject": dict,
    "array": list,
}
#: Parameter types whose values ARM never returns.
SECURE_TYPES = frozenset({"securestring", "secureobject"})


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
        key = _find_key(self.parameters, name)
        if key is None:
            raise TemplateError(
                f"The template parameter '{name}' is not found. Please see https://aka.ms/arm-syntax-parameters "
                "for usage details."
            )
        return self.parameters[key]

    def variable(self, name: Any) -> Any:
        key = _find_key(self.variables, name)
        if key is None:
            raise TemplateError(
                f"The template variable '{name}' is not found. Please see https://aka.ms/arm-syntax-variables "
                "for usage details."
            )
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


def _find_key(mapping: dict[str, Any], name: Any) -> str | None:
    if not isinstance(name, str):
        return None
    return next((key for key in mapping if key.lower() == name.lower()), None)


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
        key = _find_key(value, accessor)
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


# -- templates ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parameter:
    """A declared template parameter with its value for this deployment."""

    name: str
    type: str
    value: Any

    @property
    def secure(self) -> bool:
        """Tell whether ARM hides this parameter's value."""
        return self.type.lower() in SECURE_TYPES

    def echo(self) -> dict[str, Any]:
        """Render the parameter as ``DeploymentExtended.properties.parameters`` does (no secure value)."""
        kind = {"securestring": "SecureString", "secureobject": "SecureObject"}.get(self.type.lower())
        if kind is not None:
            return {"type": kind}
        return {"type": self.type[:1].upper() + self.type[1:], "value": self.value}


@dataclass(frozen=True)
class Evaluated:
    """A template ready to deploy: its parameters, evaluated resources and a way to evaluate its outputs."""

    parameters: tuple[Parameter, ...]
    resources: tuple[dict[str, Any], ...]
    context: Context
    outputs: dict[str, Any]

    def evaluated_outputs(self) -> dict[str, Any]:
        """Evaluate the outputs as ARM returns them (``{name: {type, value}}``)."""
        result = {}
        for name, output in self.outputs.items():
            if not isinstance(output, dict):
                raise TemplateError(f"The template output '{name}' is not valid: it must be an object.")
            kind = str(output.get("type", "string"))
            result[name] = {
                "type": kind[:1].upper() + kind[1:],
                "value": evaluate_value(output.get("value"), self.context),
            }
        return result


def _type_ok(kind: str, value: Any) -> bool:
    expected = _PARAMETER_TYPES[kind.lower()]
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def _parameters(declared: dict[str, Any], given: dict[str, Any], ctx: Context) -> tuple[Parameter, ...]:
    unknown = [name for name in given if _find_key(declared, name) is None]
    if unknown:
        raise TemplateError(
            f"The template parameters '{', '.join(unknown)}' in the parameters file are not valid; they are not "
            "present in the original template and can therefore not be provided at deployment time. The only "
            f"supported parameters for this template are '{', '.join(declared)}'. Please see "
            "https://aka.ms/arm-pass-parameter-values for usage details."
        )
    result = []
    for name, spec in declared.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
            raise TemplateError(f"The template parameter '{name}' must be an object with a 'type'.")
        kind = spec["type"]
        if kind.lower() not in _PARAMETER_TYPES:
            raise TemplateError(f"The template parameter '{name}' has an invalid type '{kind}'.")
        key = _find_key(given, name)
        if key is not None:
            entry = given[key]
            if not isinstance(entry, dict) or "value" not in entry:
                raise TemplateError(
                    f"The value for the template parameter '{name}' is not valid: a parameter value must be an "
                    "object with 'value' (Key Vault 'reference' is not supported by the local Azure)."
                )
            value = entry["value"]
        elif "defaultValue" in spec:
            value = evaluate_value(spec["defaultValue"], ctx)
        else:
            raise TemplateError(
                f"The value for the template parameter '{name}' is not provided. Please see "
                "https://aka.ms/arm-create-parameter-file for usage details."
            )
        if not _type_ok(kind, value):
            raise TemplateError(
                f"Template parameter JToken type is not valid. Expected '{kind}'. Actual "
                f"'{type(value).__name__}'. The value of the template parameter '{name}' is not valid."
            )
        allowed = spec.get("allowedValues")
        if isinstance(allowed, list) and value not in allowed:
            raise TemplateError(
                f"The provided value for the template parameter '{name}' is not valid. The value is not part of "
                f"the allowed value(s): '{', '.join(str(v) for v in allowed)}'."
            )
        ctx.parameters[name] = value
        result.append(Parameter(name=name, type=kind, value=value))
    return tuple(result)


def _resource(resource: Any, index: int, ctx: Context) -> dict[str, Any]:
    if not isinstance(resource, dict):
        raise TemplateError(f"The template resource at index '{index}' is not valid: it must be an object.")
    for key in ("type", "name", "apiVersion"):
        if not isinstance(resource.get(key), str):
            raise TemplateError(
                f"The template resource at index '{index}' is not valid: the '{key}' property is required."
            )
    try:
        evaluated = evaluate_value(resource, ctx)
    except TemplateError as exc:
        raise TemplateError(
            f"Unable to process template language expressions for resource '{resource['name']}' at index "
            f"'{index}'. '{exc.message}'"
        ) from exc
    if not isinstance(evaluated.get("name"), str):
        raise TemplateError(f"The template resource '{resource['name']}' has a name that is not a string.")
    return dict(evaluated)


def evaluate_template(template: Any, given: dict[str, Any], scope: Scope) -> Evaluated:
    """Check a template against its parameters and evaluate its resources; raise TemplateError as ARM would."""
    if not isinstance(template, dict):
        raise TemplateError("The template must be a JSON object.")
    declared = template.get("parameters") or {}
    variables = template.get("variables") or {}
    resources = template.get("resources")
    outputs = template.get("outputs") or {}
    if not isinstance(declared, dict) or not isinstance(variables, dict) or not isinstance(outputs, dict):
        raise TemplateError("The template's 'parameters', 'variables' and 'outputs' must be objects.")
    if not isinstance(resources, list):
        raise TemplateError("The template 'resources' property is required and must be an array.")
    ctx = Context(scope=scope, parameters={}, variables=dict(variables))
    parameters = _parameters(declared, given, ctx)
    for name in variables:
        ctx.variable(name)
    evaluated = tuple(_resource(resource, index, ctx) for index, resource in enumerate(resources))
    return Evaluated(parameters=parameters, resources=evaluated, context=ctx, outputs=dict(outputs))
