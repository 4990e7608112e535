"""``environments``, ``webhooks`` and ``rules`` of a registry reached through ``mloop server``.

Each mirrors its direct sibling (``Environments``, ``Webhooks``, ``Rules``) method for method; the server
checks the caller's roles, records the authenticated identity, and sends the webhooks itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pandas as pd

from mloop.registry import _models
from mloop.registry.entities import ApprovalRequest, Deployment, WebhookDelivery
from mloop.registry.rules.evaluate import Selection
from mloop.registry.rules.rule import Rule
from mloop.registry.rules.service import Rules, as_rule

if TYPE_CHECKING:
    from mloop.registry._http import HttpRegistryClient

__all__ = ["HttpEnvironments", "HttpRules", "HttpWebhooks"]


class HttpEnvironments:
    """``client.environments`` through the server: what runs where, its history, and approvals.

    >>> HttpEnvironments.deploy.__doc__.split(":")[0]
    'Put ``version`` of ``name`` into ``env``'
    """

    def __init__(self, client: HttpRegistryClient) -> None:
        self.client = client

    def create(self, env: str, description: str = "", requires_approval: bool = False) -> dict[str, Any]:
        return dict(self.client.call("POST", "/environments", {"env": env, "description": description,
                                                               "requires_approval": requires_approval}))

    def get(self, env: str) -> dict[str, Any]:
        return dict(self.client.call("GET", f"/environments/{_q(env)}"))

    def list(self) -> list[dict[str, Any]]:
        return list(self.client.call("GET", "/environments"))

    def current(self, name: str, env: str) -> int | None:
        """The version of ``name`` deployed in ``env`` now (None when none is)."""
        version = self.get(env)["models"].get(name)
        return None if version is None else int(version)

    def deploy(self, name: str, version: int, env: str, reason: str = "") -> Deployment | ApprovalRequest:
        """Put ``version`` of ``name`` into ``env``: a Deployment, or a pending ApprovalRequest if ``env`` is gated."""
        body = {"name": name, "version": _models.check_version(version), "reason": reason}
        answer = dict(self.client.call("POST", f"/environments/{_q(env)}/deployments", body))
        kind = answer.pop("kind")
        return ApprovalRequest(**answer) if kind == "approval_request" else Deployment(**answer)

    def undeploy(self, name: str, env: str, reason: str = "") -> None:
        self.client.call("DELETE", f"/environments/{_q(env)}/deployments/{_q(name)}", params={"reason": reason})

    def history(self, env: str | None = None, name: str | None = None, limit: int = 100) -> list[Deployment]:
        params = {k: v for k, v in {"env": env, "model": name, "limit": limit}.items() if v is not None}
        return [Deployment(**d) for d in self.client.call("GET", "/deployments", params=params)]

    def request(self, request_id: int) -> ApprovalRequest:
        return ApprovalRequest(**self.client.call("GET", f"/approvals/{_request_id(request_id)}"))

    def pending(self, env: str | None = None, name: str | None = None) -> list[ApprovalRequest]:
        params = {k: v for k, v in {"env": env, "model": name}.items() if v is not None}
        return [ApprovalRequest(**r) for r in self.client.call("GET", "/approvals", params=params)]

    def approve(self, request_id: int, comment: str = "") -> Deployment:
        """Approve a pending request (the server refuses its requester when it authenticates callers)."""
        return Deployment(**self.client.call("POST", f"/approvals/{_request_id(request_id)}/approve",
                                             {"comment": comment}))

    def reject(self, request_id: int, comment: str = "") -> ApprovalRequest:
        return ApprovalRequest(**self.client.call("POST", f"/approvals/{_request_id(request_id)}/reject",
                                                  {"comment": comment}))


class HttpWebhooks:
    """``client.webhooks`` through the server, which delivers the events itself (so ``dispatch`` has no work)."""

    def __init__(self, client: HttpRegistryClient) -> None:
        self.client = client

    def add(self, url: str, secret: str, events: list[str] | None = None, model: str | None = None) -> dict[str, Any]:
        """Subscribe ``url`` to ``events``; the secret travels to the server once and is never sent back."""
        return dict(self.client.call("POST", "/webhooks", {"url": url, "secret": secret, "events": events,
                                                           "model": model}))

    def list(self) -> list[dict[str, Any]]:
        return list(self.client.call("GET", "/webhooks"))

    def remove(self, webhook_id: int) -> None:
        self.client.call("DELETE", f"/webhooks/{_request_id(webhook_id)}")

    def dispatch(self, events: list[dict[str, Any]]) -> None:
        """Nothing to do here: the server that wrote the change sends its events."""

    def wait(self, timeout: float = 30.0) -> bool:
        """True: this process holds no deliveries of its own (the server does)."""
        return True

    def deliveries(self, webhook_id: int | None = None, limit: int = 100) -> list[WebhookDelivery]:
        if webhook_id is None:
            return [d for hook in self.list() for d in self.deliveries(hook["id"], limit)][:limit]
        found = self.client.call("GET", f"/webhooks/{_request_id(webhook_id)}/deliveries", params={"limit": limit})
        return [WebhookDelivery(**d) for d in found]


class HttpRules(Rules):
    """``client.rules`` through the server; a rule named by a local YAML file is read here and sent whole."""

    def __init__(self, client: HttpRegistryClient) -> None:
        self.client = client  # type: ignore[assignment]  # the same surface as RegistryClient, over HTTP

    def save(self, rule: Rule | dict[str, Any] | str) -> int:
        return int(self.client.call("POST", "/rules", {"rule": as_rule(rule).to_dict()})["version"])

    def get(self, name: str, version: int | None = None) -> Rule:
        params = {} if version is None else {"version": version}
        return Rule.from_dict(self.client.call("GET", f"/rules/{_q(name)}", params=params))

    def list(self) -> list[dict[str, Any]]:
        return list(self.client.call("GET", "/rules"))

    def evaluate(self, rule: Rule | dict[str, Any] | str) -> Selection:
        """Dry run on the server: the winner and why each other candidate lost."""
        return self._select(rule, apply=False)

    def apply(self, rule: Rule | dict[str, Any] | str) -> Selection:
        """Evaluate on the server, then move the rule's alias and/or environment to the winner."""
        return self._select(rule, apply=True)

    def _select(self, rule: Rule | dict[str, Any] | str, apply: bool) -> Selection:
        chosen = self.resolve(rule)
        answer = self.client.call("POST", "/select", {"rule": chosen.to_dict(), "apply": apply}, retry=not apply)
        return Selection(rule=Rule.from_dict(answer["rule"]), winner=answer["winner"],
                         candidates=pd.DataFrame(answer["candidates"]), applied=list(answer["applied"]))


def _q(value: Any) -> str:
    return quote(str(value), safe="")


def _request_id(value: Any) -> int:
    try:
        return _models.check_version(value)
    except Exception:
        from mloop.errors import InvalidInputError

        raise InvalidInputError(field="request_id", value=value, expected="a positive whole number") from None
