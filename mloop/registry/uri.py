"""Model URIs: ``runs:/<run_id>/<path>``, ``models:/<name>/<version>``, ``models:/<name>@<alias>``,
``models:/<name>/latest`` and local folders.

>>> parse_uri("models:/eta@champion")
ModelRef(kind='models', name='eta', version=None, alias='champion', run_id=None, path=None)
>>> parse_uri("runs:/0123456789abcdef0123456789abcdef/model").path
'model'

Serving also takes ``deployments:/<environment>/<name>`` (whatever version is deployed there):

>>> parse_deployment_uri("deployments:/prod/eta")
('prod', 'eta')
>>> parse_deployment_uri("models:/eta@champion") is None
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mloop.errors import InvalidInputError

__all__ = ["ALIAS_PATTERN", "MODELS_URI_PATTERN", "RUNS_URI_PATTERN", "ModelRef", "parse_deployment_uri", "parse_uri"]

# Public so that the REST API's OpenAPI document describes these values with the regex that checks them.
# \s spelled out as the characters Python's str.isspace() takes: regex engines disagree on what \s means
_NO_SPACE = r"[^\t-\r \x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
_RUN_ID, _ARTIFACT = r"[0-9a-f]{32}", rf"{_NO_SPACE}+"
RUNS_URI_PATTERN = rf"^runs:/{_RUN_ID}/{_ARTIFACT}$"
# letters, digits, '-' or '_', not only digits (a number names a version)
ALIAS_PATTERN = r"^[A-Za-z0-9_\-]*[A-Za-z_\-][A-Za-z0-9_\-]*$"
# A models:/ URI whose name starts with a non-space and has at most 256 of the characters of a name, and whose
# version has at most 9 digits: narrower than what parse_uri reads (it leaves the name and the version's range to
# the registry's own checks), never wider.
MODELS_URI_PATTERN = (r"^models:/[A-Za-z0-9_\-./:][A-Za-z0-9_\-. /:]{0,255}"
                      rf"(?:/(?:[1-9][0-9]{{0,8}}|latest)|@{ALIAS_PATTERN[1:-1]})$")
_RUNS = re.compile(rf"^runs:/(?P<run_id>{_RUN_ID})/(?P<path>{_ARTIFACT})$")
_MODELS = re.compile(r"^models:/(?P<name>[^@]+?)(?:/(?P<version>\d+|latest)|@(?P<alias>[A-Za-z0-9_\-]+))$")
_DEPLOYMENT = re.compile(r"^deployments:/(?P<env>[^/]+)/(?P<name>[^/]+)$")
_EXPECTED = ("runs:/<run_id>/<path>, models:/<name>/<version>, models:/<name>/latest, "
             "models:/<name>@<alias> or a local model folder")


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A parsed model URI; ``kind`` is 'runs', 'models' or 'path'."""

    kind: str
    name: str | None = None
    version: int | str | None = None  # a number, or 'latest'
    alias: str | None = None
    run_id: str | None = None
    path: str | None = None


def parse_uri(uri: str) -> ModelRef:
    """Parse a model URI (InvalidInputError says which forms exist)."""
    if isinstance(uri, Path):
        uri = str(uri)
    if not isinstance(uri, str) or not uri.strip():
        raise InvalidInputError(field="uri", value=uri, expected=_EXPECTED)
    if uri.startswith("runs:"):
        m = _RUNS.match(uri)
        if not m:
            raise InvalidInputError(field="uri", value=uri, expected="runs:/<32-hex run id>/<artifact path>")
        return ModelRef("runs", run_id=m["run_id"], path=m["path"].strip("/"))
    if uri.startswith("models:"):
        m = _MODELS.match(uri)
        if not m:
            raise InvalidInputError(field="uri", value=uri, expected="models:/<name>/<version>, "
                                    "models:/<name>/latest or models:/<name>@<alias>")
        version = m["version"]
        return ModelRef("models", name=m["name"], alias=m["alias"],
                        version=None if version is None else version if version == "latest" else int(version))
    path = uri.removeprefix("file://")
    if "://" in path or not _exists(path):
        raise InvalidInputError(field="uri", value=uri, expected=_EXPECTED)
    return ModelRef("path", path=str(Path(path).absolute()))


def _exists(path: str) -> bool:
    try:
        return Path(path).exists()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte: no such folder
        return False


def parse_deployment_uri(uri: str) -> tuple[str, str] | None:
    """``(environment, name)`` of a ``deployments:/<environment>/<name>`` URI, None for any other string."""
    m = _DEPLOYMENT.match(uri) if isinstance(uri, str) else None
    return (m["env"], m["name"]) if m else None
