"""ARM's error envelope: ``{"error": {"code", "message"}}`` with the status code and headers ARM uses."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse


class ArmError(Exception):
    """An error ARM answers with; raise it from a handler."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        target: str | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.target = target

    def body(self) -> dict[str, Any]:
        """Return the JSON body of the error."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.target:
            error["target"] = self.target
        return {"error": error}

    def response(self) -> JSONResponse:
        """Render the error as an HTTP response."""
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def not_found(resource_type: str, name: str, resource_group: str) -> ArmError:
    """Build ARM's ResourceNotFound for a missing resource."""
    return ArmError(
        404,
        "ResourceNotFound",
        f"The Resource '{resource_type}/{name}' under resource group '{resource_group}' was not found. "
        "For more details please go to https://aka.ms/ARMResourceNotFoundFix",
    )


def parent_not_found(parent_type: str, parent: str, resource_group: str) -> ArmError:
    """Build ARM's ParentResourceNotFound when the parent (a lab) is missing."""
    return ArmError(
        404,
        "ParentResourceNotFound",
        f"Failed to perform 'read' on resource(s) of type '{parent_type}', because the parent resource "
        f"'/resourceGroups/{resource_group}/providers/{parent_type}/{parent}' could not be found.",
    )


def resource_group_not_found(resource_group: str) -> ArmError:
    """Build ARM's ResourceGroupNotFound."""
    return ArmError(404, "ResourceGroupNotFound", f"Resource group '{resource_group}' could not be found.")


def invalid_parameter(message: str, target: str | None = None) -> ArmError:
    """Build a 400 InvalidParameter."""
    return ArmError(400, "InvalidParameter", message, target=target)
