"""``mloop build``: a container build context that serves one model version with ``mloop serve``.

The context holds a copy of the model folder (so the image needs no registry), a wheel of
the running mloop under ``wheels/`` (the package index may not have this version, or may have
another project under the name), a ``requirements.txt`` that installs that wheel, the model's
requirements from its manifest and mloop's own dependencies pinned to the versions installed
here, a ``Dockerfile`` on the Python version the model was saved with, and ``entrypoint.sh``,
which runs ``python -m mloop serve`` on the copied model (``HOST``, ``PORT``, ``WORKERS`` and
extra arguments configure it; a model that carries code needs ``--trusted`` passed on).

Install it without Docker from the context folder (the wheel's path is relative to it):
``cd ctx && python -m venv .venv && .venv/bin/pip install -r requirements.txt``.

>>> import tempfile, pandas as pd
>>> from pathlib import Path
>>> from sklearn.linear_model import LinearRegression
>>> from mloop.registry import save_model
>>> tmp = Path(tempfile.mkdtemp())
>>> X = pd.DataFrame({"x": [0.0, 1.0]})
>>> _ = save_model(LinearRegression().fit(X, [0.0, 1.0]), tmp / "m", input_example=X)
>>> files = build_context(str(tmp / "m"), tmp / "ctx")
>>> sorted(files)
['.dockerignore', 'Dockerfile', 'entrypoint.sh', 'model', 'requirements.txt', 'wheels']
>>> "scikit-learn==" in (tmp / "ctx" / "requirements.txt").read_text()
True
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from mloop.errors import InvalidInputError
from mloop.registry._code import canonical_name, check_requirements, parse_requirement
from mloop.serving._wheel import build_wheel, dependencies

__all__ = ["build_context", "pinned_requirements"]

DOCKERFILE = """\
# Built by `mloop build {uri}` (model {name} version {version}).
FROM python:{python}-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 MLOOP_HOME=/var/lib/mloop \\
    MLOOP_MODEL_DIR=/opt/model HOST=0.0.0.0 PORT=8080 WORKERS=1
# The host names clients use to reach the container (its service's DNS names), comma-separated; requests that
# name another host get 421, which stops DNS rebinding. '*' turns the check off.
ENV ALLOWED_HOSTS=""
WORKDIR /srv
COPY wheels wheels
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY model /opt/model
COPY entrypoint.sh /usr/local/bin/mloop-entrypoint
RUN chmod +x /usr/local/bin/mloop-entrypoint && useradd --system --home /var/lib/mloop --create-home mloop
USER mloop
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s CMD python -c \\
    "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{{os.environ[\\"PORT\\"]}}/health/ready')"
ENTRYPOINT ["mloop-entrypoint"]
"""

ENTRYPOINT = """\
#!/bin/sh
# Serve the model copied into the image; extra arguments go to `mloop serve`.
set -e
exec python -m mloop serve "${MLOOP_MODEL_DIR:-/opt/model}" --name "${MLOOP_MODEL_NAME:-%s}" \\
    --host "${HOST:-0.0.0.0}" --port "${PORT:-8080}" --workers "${WORKERS:-1}" \\
    ${ALLOWED_HOSTS:+--allowed-hosts "$ALLOWED_HOSTS"} "$@"
"""


def build_context(model_uri: str, output: str | Path, *, client: Any = None, overwrite: bool = False,
                  extra_requirements: list[str] | None = None) -> list[str]:
    """Write the build context for ``model_uri`` into ``output``; returns the names written.

    ``extra_requirements`` (PEP 508 lines) are installed too; one naming a package already listed replaces it.
    """
    from mloop.registry.packaging import read_manifest, verify_files
    from mloop.registry.uri import parse_uri
    from mloop.serving.model import source_version

    if extra_requirements:
        check_requirements("requirement", extra_requirements)
    target = Path(output)
    if target.exists() and any(target.iterdir()):
        if not overwrite:
            raise InvalidInputError(field="output", value=str(target), expected="an empty or new folder "
                                    "(or overwrite=True / --overwrite)")
        shutil.rmtree(target)
    concrete = source_version(model_uri, client)
    ref = parse_uri(concrete)
    name, version = None, None
    if ref.kind == "path":
        folder = Path(str(ref.path))
    else:  # only the files are copied: nothing of the model is loaded or run here
        if client is None:
            from mloop.config import Settings
            from mloop.registry import registry_for

            client = registry_for(Settings.load())
        storage, name, version, _ = client.locate(ref)
        folder = client.local_folder(storage)
    manifest = read_manifest(folder)
    verify_files(folder, manifest)
    requirements = pinned_requirements(manifest, extra_requirements)  # a bad line fails before anything is written
    python = ".".join(str(manifest.get("python") or "3.11").split(".")[:2])
    if not re.fullmatch(r"3\.\d{1,2}", python):  # the uploader wrote it, and it lands in the Dockerfile's FROM line
        raise InvalidInputError(field="manifest.python", value=manifest.get("python"), expected="a version like 3.11.7")
    target.mkdir(parents=True, exist_ok=True)
    shutil.copytree(folder, target / "model")
    wheel = build_wheel(target / "wheels")
    (target / "requirements.txt").write_text(
        f"# mloop {wheel.name.split('-')[1]}: the running package, as a wheel in this context\n"
        f"./wheels/{wheel.name}\n" + "\n".join(requirements) + "\n")
    name = name or "model"
    version = version if version is not None else manifest.get("run_id") or "local"
    one_line = " ".join  # the URI and the manifest's run id go into a comment: no line break may end it early
    (target / "Dockerfile").write_text(DOCKERFILE.format(uri=one_line(model_uri.split()), name=name,
                                                         version=one_line(str(version).split()), python=python))
    entry = target / "entrypoint.sh"
    entry.write_text(ENTRYPOINT % name)
    entry.chmod(0o755)
    (target / ".dockerignore").write_text("**/__pycache__\n**/*.pyc\n")
    return sorted(p.name for p in target.iterdir())


def pinned_requirements(manifest: dict[str, Any], extra: list[str] | None = None) -> list[str]:
    """The lines to install besides mloop's wheel: the model's own requirements (as its manifest lists them),
    mloop's dependencies at the versions installed here, then ``extra``; one line per package.

    >>> lines = pinned_requirements({"pip_requirements": ["scikit-learn==1.5.2", "mloop==0.1.0"]}, ["gunicorn"])
    >>> lines[0], lines[-1], any(line.startswith("mloop") for line in lines)
    ('scikit-learn==1.5.2', 'gunicorn', False)
    """
    from mloop.registry.packaging import installed_versions

    model = manifest.get("pip_requirements")
    if model is None:  # saved before models recorded requirement lines: its pins
        model = [f"{pkg}=={ver}" for pkg, ver in sorted((manifest.get("requirements") or {}).items())]
    lines: dict[str, str] = {}
    for line in model:
        req = parse_requirement(line, "manifest.pip_requirements")
        if canonical_name(req.name) != "mloop":  # the wheel in the context is the mloop to install
            lines.setdefault(canonical_name(req.name), line)
    for line in dependencies():
        req = parse_requirement(line, "mloop's Requires-Dist")
        version = installed_versions([req.name]).get(req.name)
        if version is not None and (req.marker is None or req.marker.evaluate()):
            extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
            line = f"{req.name}{extras}=={version}" + (f"; {req.marker}" if req.marker else "")
        lines.setdefault(canonical_name(req.name), line)
    for line in extra or []:
        lines[canonical_name(parse_requirement(line, "requirement").name)] = line
    return list(lines.values())
