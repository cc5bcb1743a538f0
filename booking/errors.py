"""Typed domain errors: each carries the contract's `code` and the facts behind it."""
from __future__ import annotations


class DomainError(Exception):
    code = "domain_error"

    def __init__(self, detail: str, **facts):
        super().__init__(detail)
        self.detail = detail
        self.facts = facts


class InvalidInput(DomainError):
    """Input that is well-formed but breaks a rule; `errors` is keyed by field."""

    code = "validation_error"

    def __init__(self, errors: dict, detail: str = "The request has invalid fields."):
        super().__init__(detail, errors=errors)
        self.errors = errors


class NotFound(DomainError):
    code = "not_found"


class InUse(DomainError):
    code = "in_use"
