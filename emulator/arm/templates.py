"""ARM templates as a deployment checks them: parameters against their declarations, resources, outputs.

Pure (no I/O): ``evaluate_template`` turns a template and its deployment parameters into the resources and outputs
to deploy, or raises ``TemplateError`` with the message ARM's ``InvalidTemplate`` would carry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from emulator.arm.template_language import Context, Scope, TemplateError, evaluate_value, find_key

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
    unknown = [name for name in given if find_key(declared, name) is None]
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
        key = find_key(given, name)
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
