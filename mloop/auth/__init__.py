"""Identity and permissions: users and service accounts, API tokens, roles per project.

The server authenticates each request with a token and hands the capabilities the identity as their actor;
see docs/auth.md.
"""

from mloop.auth.roles import DEFAULT_PROJECT, PROJECT_TAG, Identity, Role, parse_role
from mloop.auth.store import AuthStore, TokenInfo, UserInfo
from mloop.auth.tokens import NewToken

__all__ = ["DEFAULT_PROJECT", "PROJECT_TAG", "AuthStore", "Identity", "NewToken", "Role", "TokenInfo", "UserInfo",
           "parse_role"]
