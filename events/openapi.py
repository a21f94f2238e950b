"""OpenAPI pieces that DRF cannot infer: the publish body comes from the msgspec model."""

import msgspec
from django.db import OperationalError, ProgrammingError
from drf_spectacular.extensions import OpenApiAuthenticationExtension

from events.auth import key_required
from events.validation import TOPIC_PATTERN, PublishedEvent

_schema, _components = msgspec.json.schema_components([PublishedEvent], ref_template="#/components/schemas/{name}")
_event_schema = _components["PublishedEvent"]
# OpenAPI 3.0 schemas take one `example`, not JSON Schema's `examples` list.
for _property in _event_schema["properties"].values():
    if "examples" in _property:
        _property["example"] = _property.pop("examples")[0]
# events.validation checks the topic pattern itself, outside msgspec's decode.
_event_schema["properties"]["topic"]["pattern"] = TOPIC_PATTERN
# NUL cannot be stored (events.validation); msgspec's schema cannot say so.
_event_schema["properties"]["source"]["pattern"] = "^[^\\u0000]*$"
# msgspec drops the date-time format once the field carries a description.
_event_schema["properties"]["timestamp"].update(format="date-time", example="2026-05-01T12:00:00Z")
_event_schema["properties"]["payload"] = {
    "type": "object",
    "description": (
        "Any JSON object, nested at most 64 levels deep, with no key twice in one object, integers within the "
        "signed or unsigned 64-bit range, and no NUL character (\\u0000)."
    ),
    "additionalProperties": True,
}

PUBLISH_REQUEST = {
    "application/json": {
        "oneOf": [
            _event_schema,
            {
                "type": "array",
                "items": _event_schema,
                "minItems": 1,
                "description": "A batch: accepted whole or not at all.",
            },
        ]
    }
}


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """Documents events.auth.ApiKeyAuthentication as HTTP bearer authentication."""

    target_class = "events.auth.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key from `manage.py api_keys create`, when keys are configured.",
        }

    def get_security_requirement(self, auto_schema):
        # Described as the service behaves when the document is generated: a
        # key is optional ({}: no security) until the view requires one.
        requirement = {self.name: []}
        return requirement if _key_required(auto_schema.view) else [{}, requirement]


def _key_required(view) -> bool:
    try:
        return key_required(view)
    except (OperationalError, ProgrammingError):
        # Generated before the database exists or is migrated (`manage.py
        # check --deploy` on a new deployment): no key can exist yet.
        return False


def require_publish_body(result, generator, request, public):
    """Postprocessing hook: a publish request without a body is refused, so the body is required.

    drf-spectacular cannot tell from the raw schema above.
    """
    result["paths"]["/publish"]["post"]["requestBody"]["required"] = True
    return result
