"""The template language subset of the local Azure's deployments (pure, no emulator process)."""

from __future__ import annotations

from typing import Any

import pytest

from emulator.arm.template_language import (
    Context,
    Scope,
    TemplateError,
    evaluate_string,
    evaluate_template,
    parse_expression,
)

LABS = "/subscriptions/sub-1/resourceGroups/rg-imagefactory/providers/Microsoft.DevTestLab/labs"
SCOPE = Scope(subscription_id="sub-1", resource_group="rg-imagefactory", location="westeurope", tenant_id="t-1")


def _ctx(parameters: dict[str, Any] | None = None, variables: dict[str, Any] | None = None) -> Context:
    return Context(scope=SCOPE, parameters=dict(parameters or {}), variables=dict(variables or {}))


def _template(**overrides: Any) -> dict[str, Any]:
    template: dict[str, Any] = {
        "parameters": {"labName": {"type": "string"}, "password": {"type": "securestring"}},
        "variables": {},
        "resources": [],
    }
    template.update(overrides)
    return template


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain text", "plain text"),
        ("[[not an expression]", "[not an expression]"),
        ("['it''s']", "it's"),
        ("[concat('a', 'b', concat('c', 'd'))]", "abcd"),
        ("[concat('n', 7)]", "n7"),
        ("[resourceGroup().location]", "westeurope"),
        ("[resourceGroup().name]", "rg-imagefactory"),
        ("[RESOURCEGROUP().Location]", "westeurope"),
        ("[subscription().subscriptionId]", "sub-1"),
        ("[parameters('labName')]", "Lab"),
        ("[variables('vnet')]", "DtlLab"),
        ("[concat(variables('list'), variables('list'))[3]]", "y"),
    ],
)
def test_expressions(text: str, expected: Any) -> None:
    ctx = _ctx({"labName": "Lab"}, {"vnet": "[concat('Dtl', parameters('labName'))]", "list": ["x", "y"]})
    assert evaluate_string(text, ctx) == expected


def test_resource_id_forms() -> None:
    ctx = _ctx()
    assert (
        evaluate_string("[resourceId ('Microsoft.DevTestLab/labs/virtualmachines', 'Lab', 'vm1')]", ctx)
        == f"{LABS}/Lab/virtualmachines/vm1"
    )
    assert (
        evaluate_string(
            "[resourceId('Microsoft.DevTestLab/labs/artifactSources/artifacts', 'Lab', 'public repo', 'win-sysprep')]",
            ctx,
        )
        == f"{LABS}/Lab/artifactSources/public repo/artifacts/win-sysprep"
    )
    assert (
        evaluate_string("[resourceId('other-rg', 'Microsoft.DevTestLab/labs', 'Lab')]", ctx)
        == "/subscriptions/sub-1/resourceGroups/other-rg/providers/Microsoft.DevTestLab/labs/Lab"
    )
    assert (
        evaluate_string("[resourceId('sub-2', 'rg2', 'Microsoft.DevTestLab/labs', 'Lab')]", ctx)
        == "/subscriptions/sub-2/resourceGroups/rg2/providers/Microsoft.DevTestLab/labs/Lab"
    )
    with pytest.raises(TemplateError, match="requires '2' resource name"):
        evaluate_string("[resourceId('Microsoft.DevTestLab/labs/virtualmachines', 'Lab')]", ctx)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[uniqueString('x')]", "The template function 'uniqueString' is not supported by the local Azure"),
        ("[frobnicate()]", "The template function 'frobnicate' is not found"),
        ("[concat('a',]", "is not valid"),
        ("[concat('a' 'b')]", "expected ')'"),
        ("[parameters('missing')]", "The template parameter 'missing' is not found"),
        ("[resourceGroup().nowhere]", "property 'nowhere' doesn't exist"),
        ("['unterminated]", "is not valid"),
        ("[]", "the expression is empty"),
    ],
)
def test_expression_errors_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        evaluate_string(text, _ctx())
    assert message in caught.value.message


def test_parse_keeps_calls_and_accessors() -> None:
    node = parse_expression("resourceGroup ( ).location")
    assert node.name == "resourceGroup"  # type: ignore[union-attr]
    assert node.accessors == ("location",)  # type: ignore[union-attr]


def test_variables_in_any_order_and_cycles_refused() -> None:
    template = _template(
        variables={
            "subnet": "[concat(variables('vnet'), 'Subnet')]",
            "vnet": "[concat('Dtl', parameters('labName'))]",
        }
    )
    evaluated = evaluate_template(template, {"labName": {"value": "Lab"}, "password": {"value": "x"}}, SCOPE)
    assert evaluated.context.variable("subnet") == "DtlLabSubnet"
    cyclic = _template(variables={"a": "[variables('b')]", "b": "[variables('a')]"})
    with pytest.raises(TemplateError, match="refers to itself"):
        evaluate_template(cyclic, {"labName": {"value": "Lab"}, "password": {"value": "x"}}, SCOPE)


def test_parameters_checked_as_arm_does() -> None:
    given = {"labName": {"value": "Lab"}, "password": {"value": "secret"}}
    with pytest.raises(TemplateError, match="The template parameters 'extra' in the parameters file are not valid"):
        evaluate_template(_template(), {**given, "extra": {"value": 1}}, SCOPE)
    with pytest.raises(TemplateError, match="The value for the template parameter 'password' is not provided"):
        evaluate_template(_template(), {"labName": {"value": "Lab"}}, SCOPE)
    with pytest.raises(TemplateError, match="Expected 'string'"):
        evaluate_template(_template(), {**given, "labName": {"value": 3}}, SCOPE)
    sized = _template(
        parameters={"size": {"type": "string", "defaultValue": "Small", "allowedValues": ["Small", "Large"]}}
    )
    assert evaluate_template(sized, {}, SCOPE).parameters[0].value == "Small"
    with pytest.raises(TemplateError, match="not part of the allowed value"):
        evaluate_template(sized, {"size": {"value": "Huge"}}, SCOPE)


def test_secure_parameters_are_never_echoed() -> None:
    evaluated = evaluate_template(_template(), {"labName": {"value": "Lab"}, "password": {"value": "s3cret"}}, SCOPE)
    echoed = {p.name: p.echo() for p in evaluated.parameters}
    assert echoed == {"labName": {"type": "String", "value": "Lab"}, "password": {"type": "SecureString"}}


def test_resources_and_outputs_evaluated() -> None:
    template = _template(
        resources=[
            {
                "apiVersion": "2018-10-15-preview",
                "type": "Microsoft.DevTestLab/labs/virtualmachines",
                "name": "[concat(parameters('labName'), '/', 'vm1')]",
                "location": "[resourceGroup().location]",
                "properties": {"notes": "[[kept]", "items": ["[parameters('labName')]"]},
            }
        ],
        outputs={"where": {"type": "string", "value": "[resourceGroup().location]"}},
    )
    evaluated = evaluate_template(template, {"labName": {"value": "Lab"}, "password": {"value": "x"}}, SCOPE)
    resource = evaluated.resources[0]
    assert resource["name"] == "Lab/vm1"
    assert resource["location"] == "westeurope"
    assert resource["properties"] == {"notes": "[kept]", "items": ["Lab"]}
    assert evaluated.evaluated_outputs() == {"where": {"type": "String", "value": "westeurope"}}


def test_a_resource_error_names_the_resource() -> None:
    template = _template(
        resources=[{"apiVersion": "1", "type": "t/x", "name": "vm", "properties": {"a": "[guid('x')]"}}]
    )
    with pytest.raises(TemplateError) as caught:
        evaluate_template(template, {"labName": {"value": "Lab"}, "password": {"value": "x"}}, SCOPE)
    assert "resource 'vm'" in caught.value.message
    assert "'guid'" in caught.value.message
