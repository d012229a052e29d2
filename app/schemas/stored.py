"""A response body kept in the database as JSON, typed for OpenAPI yet served exactly as it was stored."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer


class AsStored(BaseModel):
    """A body stored as JSON when it was computed (an allocation's recommendation, its search summary),
    possibly by an older labelmix, and shown as stored.

    Keys an older version did not write stay absent, never null: such a field defaults to None here and
    the serializer drops every field the stored body did not give, so that default never reaches a
    client. Keys an older version wrote that this one no longer knows are kept (extra="allow"). A body
    built now has every field, so it serializes exactly as the dict it was built from.
    """

    model_config = ConfigDict(extra="allow")

    # No return annotation: OpenAPI then describes the fields, not a free-form object.
    @model_serializer(mode="wrap")
    def _as_stored(self, handler: SerializerFunctionWrapHandler):
        body = handler(self)
        given = self.model_fields_set | set(self.model_extra or {})
        return {key: value for key, value in body.items() if key in given}
