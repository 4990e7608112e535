"""Roles and identities: what a user or service account may do, per project.

A project groups experiments, registered models, feature projects and flows: each belongs to the project named
by its ``project`` tag, or to ``default`` when it has none.

>>> me = Identity(name="ana", kind="user", is_admin=False, roles={"default": Role.EDITOR})
>>> me.role_in("default") >= Role.VIEWER, me.role_in("fraud")
(True, None)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from mloop.errors import InvalidInputError

__all__ = ["DEFAULT_PROJECT", "PROJECT_TAG", "Identity", "Role", "parse_role"]

DEFAULT_PROJECT = "default"
PROJECT_TAG = "project"  # the tag on an experiment or a registered model that names its project


class Role(enum.IntEnum):
    """Ordered: each role can do everything the ones below it can."""

    VIEWER = 1
    EDITOR = 2
    MAINTAINER = 3
    ADMIN = 4

    @property
    def label(self) -> str:
        return self.name.lower()


def parse_role(text: str) -> Role:
    """'viewer', 'editor', 'maintainer' or 'admin' -> Role (case-insensitive).

    >>> parse_role("Maintainer")
    <Role.MAINTAINER: 3>
    """
    try:
        return Role[str(text).strip().upper()]
    except KeyError:
        raise InvalidInputError(field="role", value=text,
                                expected="one of viewer, editor, maintainer, admin") from None


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a request comes from: a user or a service account with its roles per project."""

    name: str
    kind: str
    is_admin: bool
    roles: dict[str, Role] = field(default_factory=dict)

    def role_in(self, project: str) -> Role | None:
        """The role this identity holds in ``project`` (a server-wide admin is admin everywhere)."""
        if self.is_admin:
            return Role.ADMIN
        return self.roles.get(project)
