"""API keys of the organization: issue keys with narrower scopes, list and revoke them."""

from __future__ import annotations

import marshmallow as ma
from flask.views import MethodView

from booking.services.tenancy import issue_api_key, revoke_api_key
from models import CHANNELS, KEY_KINDS, SCOPES, ApiKey

from . import db, etags, idempotency
from .auth import organization_id, requires
from .base import (
    GONE_BUT_AUDITED,
    AuditListArgs,
    Blueprint,
    Name,
    Schema,
    Secret,
    SecretWithheld,
    audited,
    get_or_404,
    page_schema,
    paginate,
)

blp = Blueprint(
    "api_keys",
    __name__,
    url_prefix="/v1/api-keys",
    description="API keys: a booking frontend usually gets read and book only",
)


class ApiKeySchema(Schema):
    id = ma.fields.String(dump_only=True)
    name = Name(required=True)
    scopes = ma.fields.List(
        ma.fields.String(validate=ma.validate.OneOf(SCOPES)),
        validate=ma.validate.Length(min=1),
        metadata={"description": "Required for a secret key; a publishable key holds read and book (the default)"},
    )
    channel = ma.fields.String(
        load_default="frontend",
        validate=ma.validate.OneOf(CHANNELS),
        metadata={
            "description": "frontend (default): a booking frontend acting for patients, bound by every booking "
            "policy, never recording clinical facts; staff: the front desk or a clinic system, which may override "
            "a policy with override_reason"
        },
    )
    kind = ma.fields.String(
        load_default="secret",
        validate=ma.validate.OneOf(KEY_KINDS),
        metadata={
            "description": "secret (default): `nbk_...`, kept on a server; publishable: `pk_...`, safe to ship in a "
            "web page: channel frontend, only what a booking page does, only from its `origins`"
        },
    )
    origins = ma.fields.List(
        ma.fields.String(validate=ma.validate.Length(max=200)),
        allow_none=True,
        load_default=None,
        validate=ma.validate.Length(min=1, max=50),
        metadata={
            "description": "A publishable key's browser origins (`https://book.example.com`; http only for "
            "localhost): CORS answers them, and a request from another Origin is a 403 `origin_not_allowed`. "
            "Required for a publishable key, null for a secret one",
            "example": ["https://book.example.com"],
        },
    )
    prefix = ma.fields.String(dump_only=True, metadata={"description": "First characters, to recognise it"})
    revoked_at = ma.fields.AwareDateTime(dump_only=True, allow_none=True)
    created_at = ma.fields.AwareDateTime(dump_only=True)


class NewApiKeySchema(ApiKeySchema):
    secret = Secret("The key itself (nbk_... or pk_...): send it as `Authorization: Bearer <secret>`")
    key = Secret("The key itself", deprecated_for="secret")
    secret_withheld = SecretWithheld()


ApiKeyPageSchema = page_schema(ApiKeySchema)


@blp.route("")
class ApiKeys(MethodView):
    @requires("admin")
    @blp.arguments(AuditListArgs, location="query")
    @blp.response(200, ApiKeyPageSchema)
    def get(self, args):
        """List the organization's live API keys (and the revoked ones too with include_revoked)"""
        return paginate(audited(ApiKey, args), ApiKey, args)

    @requires("admin")
    @blp.arguments(ApiKeySchema)
    @blp.response(201, NewApiKeySchema)
    @etags.tagged
    def post(self, data):
        """Issue an API key; the response shows the key once"""
        key, token = issue_api_key(
            db.session(),
            organization_id(),
            data["name"],
            data.get("scopes"),
            data["channel"],
            kind=data["kind"],
            origins=data["origins"],
        )
        key.secret = key.key = token  # not columns: they exist only in this response
        idempotency.withhold("secret", "key")
        return key


@blp.route("/<key_id>")
class ApiKeyItem(MethodView):
    @requires("admin")
    @blp.response(200, ApiKeySchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @etags.tagged
    def get(self, key_id):
        """Get an API key (never the key itself)"""
        return get_or_404(ApiKey, key_id, what="API key")

    @requires("admin")
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(description=GONE_BUT_AUDITED)
    @etags.conditional
    def delete(self, key_id):
        """Revoke an API key at once"""
        revoke_api_key(db.session(), organization_id(), key_id, etags.expected_version(key_id))
