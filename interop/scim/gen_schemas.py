"""Writes crates/api/src/scim/schemas.json: the RFC 7643 schemas Tessera's /scim/v2/Schemas
publishes, taken from scim2-models and trimmed to the attributes Tessera keeps.

Run with the scim venv: $CARGO_TARGET_DIR/scim-venv/bin/python interop/scim/gen_schemas.py
"""

import json
import pathlib

from scim2_models import Group, ResourceType, Schema, ServiceProviderConfig, User

KEPT = {
    "User": {
        "userName": None,
        "name": {"formatted", "familyName", "givenName"},
        "displayName": None,
        "emails": {"value", "type", "primary"},
        "active": None,
    },
    "Group": {"displayName": None, "members": {"value", "$ref"}},
}


def trimmed(model):
    schema = model.to_schema().model_dump(mode="json", exclude_none=True, by_alias=True)
    kept = KEPT.get(schema["name"])
    if kept is None:
        return schema
    attrs = []
    for attr in schema["attributes"]:
        if attr["name"] not in kept:
            continue
        subs = kept[attr["name"]]
        if subs is not None:
            attr["subAttributes"] = [s for s in attr["subAttributes"] if s["name"] in subs]
        if attr["name"] == "members":
            # Members are people: a team holds no teams.
            for sub in attr["subAttributes"]:
                if sub["name"] == "$ref":
                    sub["referenceTypes"] = ["User"]
        if attr["name"] == "active":
            # Tessera always knows whether an account is active: absent on creation means
            # true, and it cannot be removed, only set to false.
            attr["required"] = True
        attrs.append(attr)
    schema["attributes"] = attrs
    return schema


out = [trimmed(m) for m in (User, Group, Schema, ResourceType, ServiceProviderConfig)]
path = pathlib.Path(__file__).resolve().parents[2] / "crates/api/src/scim/schemas.json"
path.parent.mkdir(parents=True, exist_ok=True)
path.write_text(json.dumps(out, indent=1) + "\n")
