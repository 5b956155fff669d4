"""What people do over the audit API (POSTs with an act token): they act as the token's person
(services/audit/acting.py says how that is attested and signed)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from keel.client import Client
from keel.errors import KeelError
from keel.secure.tokens import ACT
from keel_services.audit import acting
from keel_services.audit.answers import Answers, dump, reply


class Target(BaseModel):
    model_config = ConfigDict(extra="forbid")
    env: str = Field(min_length=1, max_length=200)
    at: str | None = Field(None, description="business time, ISO 8601 (default: now)")


class Review(Target):
    reason: str = Field(min_length=1, max_length=2000)


class DeployRequest(Review):
    override: bool = False


class RollbackRequest(Target):
    to: str | None = Field(None, description="model ID or prefix (default: the previous one)")
    reason: str | None = Field(None, max_length=2000)


def router(ans: Answers) -> APIRouter:
    r = APIRouter()
    rt, store = ans.rt, ans.store

    def act(request: Request, command: Any) -> Response:
        """Run `command(client, attestation)` as the token's person: refused (409) with the
        reason when Keel refuses it, e.g. a gate that fails without override, an approver who
        triggered the promotion. The guard refused other scopes already; without any token
        configured there is no person to act for: 403."""
        principal = request.scope.get("state", {}).get("principal")
        if principal is None or principal.scope != ACT or not principal.identity:
            raise HTTPException(
                403,
                "commands need a token of scope act, which names the person acting: create "
                "one with `keel audit tokens create --scope act --identity NAME` and send it "
                "as Authorization: Bearer (queries need none, or a read token)",
            )
        att = acting.attest(rt, principal)
        person = Client.over(acting.runtime_for(rt, att), views=store, commands=ans.commands)
        try:
            done = command(person, att)
        except KeelError as exc:
            raise HTTPException(
                409, {"error": str(exc), "hint": exc.hint, "authenticated": att.as_dict()}
            ) from None
        return reply({**dump(done), "authenticated": att.as_dict()})

    noted = acting.noted

    @r.post("/v1/models/{model}/approve")
    def approve(model: str, body: Review, request: Request) -> Response:
        return act(request, lambda c, a: c.approve(model, body.env, noted(body.reason, a), body.at))

    @r.post("/v1/models/{model}/reject")
    def reject(model: str, body: Review, request: Request) -> Response:
        return act(request, lambda c, a: c.reject(model, body.env, noted(body.reason, a), body.at))

    @r.post("/v1/models/{model}/evaluate")
    def evaluate(model: str, body: Target, request: Request) -> Response:
        # the gate's decision has no reason of the person's: it records them as its actor
        return act(request, lambda c, a: c.evaluate(model, body.env, body.at))

    @r.post("/v1/models/{model}/deploy")
    def deploy(model: str, body: DeployRequest, request: Request) -> Response:
        return act(
            request,
            lambda c, a: c.deploy(model, body.env, noted(body.reason, a), body.override, body.at),
        )

    @r.post("/v1/families/{family}/rollback")
    def rollback(family: str, body: RollbackRequest, request: Request) -> Response:
        return act(
            request,
            lambda c, a: c.rollback(family, body.env, body.to, noted(body.reason, a), body.at),
        )

    return r
