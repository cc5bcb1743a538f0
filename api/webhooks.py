"""Webhooks: subscribe a URL to event types; deliveries are signed (Standard Webhooks)."""

from __future__ import annotations

from datetime import timedelta

import marshmallow as ma
import sqlalchemy as sa
from flask import current_app
from flask.views import MethodView

from booking.integrations import webhooks
from booking.services.events import EVENT_TYPES
from models import DELIVERY_STATUSES, WEBHOOK_STATUSES, WebhookDelivery, WebhookSubscription

from . import db, etags, idempotency
from .auth import organization_id, requires
from .base import (
    GONE,
    Blueprint,
    ListArgs,
    Schema,
    Secret,
    SecretWithheld,
    get_or_404,
    page_schema,
    paginate,
    scoped,
)

blp = Blueprint(
    "webhooks",
    __name__,
    url_prefix="/v1/webhooks",
    description=(
        "Webhooks: events delivered to your URL, signed per Standard Webhooks (webhook-id, webhook-timestamp, "
        "webhook-signature = v1,base64(HMAC-SHA256(secret, id.timestamp.body)); during a secret rotation's grace "
        "period, two space-separated signatures, one per secret), retried for about three days. Disabled on a 410 "
        "Gone or after a long run of failures (a `webhook.disabled` event says so); PATCH `status: active` re-enables"
    ),
)


class WebhookSchema(Schema):
    id = ma.fields.String(dump_only=True)
    url = ma.fields.Url(
        required=True,
        schemes={"http", "https"},
        require_tld=False,
        validate=ma.validate.Length(max=2000),
        metadata={"description": "http(s); private and loopback addresses are refused"},
    )
    event_types = ma.fields.List(
        ma.fields.String(validate=ma.validate.OneOf(EVENT_TYPES)), required=True, validate=ma.validate.Length(min=1)
    )
    description = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=500))
    status = ma.fields.String(
        dump_only=True,
        validate=ma.validate.OneOf(WEBHOOK_STATUSES),
        metadata={
            "description": "disabled when the endpoint answered 410 Gone, after a long run of failed attempts "
            "(WEBHOOK_DISABLE_AFTER_FAILURES in a row over WEBHOOK_DISABLE_AFTER_DAYS with none delivered), or on "
            "request; nothing is sent to a disabled subscription and its pending deliveries are cancelled"
        },
    )
    disabled_reason = ma.fields.String(
        dump_only=True, allow_none=True, metadata={"description": "Why and since when it is disabled"}
    )
    disabled_at = ma.fields.AwareDateTime(dump_only=True, allow_none=True)
    previous_secret_expires_at = ma.fields.AwareDateTime(
        dump_only=True,
        allow_none=True,
        metadata={"description": "Until then, the secret the last rotation replaced still signs every delivery"},
    )
    created_at = ma.fields.AwareDateTime(dump_only=True)
    updated_at = ma.fields.AwareDateTime(dump_only=True)


class NewWebhookSchema(WebhookSchema):
    secret = Secret("whsec_... signing secret: verify each delivery's signature with it")
    secret_withheld = SecretWithheld()


class WebhookChangeSchema(Schema):
    url = ma.fields.Url(
        schemes={"http", "https"},
        require_tld=False,
        validate=ma.validate.Length(max=2000),
        metadata={"description": "http(s); checked as on subscribing: private and loopback addresses are refused"},
    )
    event_types = ma.fields.List(
        ma.fields.String(validate=ma.validate.OneOf(EVENT_TYPES)), validate=ma.validate.Length(min=1)
    )
    description = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=500))
    status = ma.fields.String(
        validate=ma.validate.OneOf(WEBHOOK_STATUSES),
        metadata={"description": "active re-enables a disabled subscription; disabled stops it"},
    )


class RotatedWebhookSchema(WebhookSchema):
    secret = Secret("the new whsec_... signing secret; the old one still signs until `previous_secret_expires_at`")
    secret_withheld = SecretWithheld()


class AttemptSchema(ma.Schema):
    attempted_at = ma.fields.AwareDateTime()
    status_code = ma.fields.Integer(allow_none=True)
    error = ma.fields.String(allow_none=True)
    duration_ms = ma.fields.Integer()


class DeliverySchema(ma.Schema):
    id = ma.fields.String()
    event_id = ma.fields.String(metadata={"description": "Also the webhook-id header"})
    event_type = ma.fields.Function(
        lambda delivery: delivery.event.type, metadata={"type": "string", "enum": list(EVENT_TYPES)}
    )
    status = ma.fields.String(metadata={"enum": list(DELIVERY_STATUSES)})
    attempts = ma.fields.Integer()
    next_attempt_at = ma.fields.AwareDateTime(allow_none=True)
    last_status_code = ma.fields.Integer(allow_none=True)
    last_error = ma.fields.String(allow_none=True)
    delivered_at = ma.fields.AwareDateTime(allow_none=True)
    created_at = ma.fields.AwareDateTime()
    attempt_log = ma.fields.List(ma.fields.Nested(AttemptSchema), data_key="attempt_log")
    redelivered_at = ma.fields.AwareDateTime(
        allow_none=True, metadata={"description": "When it was last asked for again; its retries count from then"}
    )


class DeliveryListArgs(ListArgs):
    status = ma.fields.String(validate=ma.validate.OneOf(DELIVERY_STATUSES))


WebhookPageSchema = page_schema(WebhookSchema)
DeliveryPageSchema = page_schema(DeliverySchema)


def _one(webhook_id: str) -> WebhookSubscription:
    return get_or_404(WebhookSubscription, webhook_id, what="webhook")


@blp.route("")
class Webhooks(MethodView):
    @requires("admin")
    @blp.arguments(ListArgs, location="query")
    @blp.response(200, WebhookPageSchema)
    def get(self, args):
        """List webhook subscriptions"""
        return paginate(scoped(WebhookSubscription), WebhookSubscription, args)

    @requires("admin")
    @blp.arguments(WebhookSchema)
    @blp.response(201, NewWebhookSchema)
    @etags.tagged
    def post(self, data):
        """Subscribe a URL to event types; the response shows the signing secret once"""
        subscription = webhooks.subscribe(
            db.session(),
            organization_id(),
            data["url"],
            data["event_types"],
            data.get("description"),
            allow_private=current_app.config["WEBHOOKS_ALLOW_PRIVATE"],
        )
        idempotency.withhold("secret")
        return subscription


@blp.route("/<webhook_id>")
class WebhookItem(MethodView):
    @requires("admin")
    @blp.response(200, WebhookSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @etags.tagged
    def get(self, webhook_id):
        """Get a webhook subscription (never its secret)"""
        return _one(webhook_id)

    @requires("admin")
    @blp.arguments(WebhookChangeSchema)
    @blp.response(200, WebhookSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @etags.conditional
    @etags.tagged
    def patch(self, data, webhook_id):
        """Change a subscription's URL, event types or description, or re-enable it (`status: active`)"""
        return webhooks.change_subscription(
            db.session(),
            organization_id(),
            webhook_id,
            data,
            etags.expected_version(webhook_id),
            allow_private=current_app.config["WEBHOOKS_ALLOW_PRIVATE"],
        )

    @requires("admin")
    @blp.response(204)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(description=GONE)
    @etags.conditional
    def delete(self, webhook_id):
        """Delete a subscription: nothing more is sent to it, pending deliveries are cancelled"""
        webhooks.delete_subscription(db.session(), organization_id(), webhook_id, etags.expected_version(webhook_id))


@blp.route("/<webhook_id>/deliveries")
class WebhookDeliveries(MethodView):
    @requires("admin")
    @blp.arguments(DeliveryListArgs, location="query")
    @blp.response(200, DeliveryPageSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, args, webhook_id):
        """The delivery log of a subscription: each event, its attempts and their answers"""
        subscription = _one(webhook_id)
        query = sa.select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription.id)
        if args.get("status"):
            query = query.where(WebhookDelivery.status == args["status"])
        return paginate(query, WebhookDelivery, args)


@blp.route("/<webhook_id>/rotate-secret")
class WebhookSecretRotation(MethodView):
    @requires("admin")
    @blp.response(200, RotatedWebhookSchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @etags.conditional
    @etags.tagged
    def post(self, webhook_id):
        """Rotate the signing secret: the new one is shown once; the old one also signs for a grace period"""
        subscription = webhooks.rotate_secret(
            db.session(),
            organization_id(),
            webhook_id,
            etags.expected_version(webhook_id),
            grace=timedelta(hours=current_app.config["WEBHOOK_SECRET_GRACE_HOURS"]),
        )
        idempotency.withhold("secret")
        return subscription


@blp.route("/<webhook_id>/test")
class WebhookTest(MethodView):
    @requires("admin")
    @blp.response(202, DeliverySchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def post(self, webhook_id):
        """Send a `webhook.test` event to this subscription only; answers with its delivery, queued"""
        return webhooks.send_test(db.session(), organization_id(), webhook_id)


@blp.route("/<webhook_id>/deliveries/<delivery_id>/redeliver")
class WebhookRedelivery(MethodView):
    @requires("admin")
    @blp.response(202, DeliverySchema)
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def post(self, webhook_id, delivery_id):
        """Send a delivery from the log again (a failed or cancelled one too); its retries start over"""
        return webhooks.redeliver(db.session(), organization_id(), webhook_id, delivery_id)
