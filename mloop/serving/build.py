"""``mloop build``: a container build context that serves one model version with ``mloop serve``.

The context holds a copy of the model folder (so the image needs no registry), a
``requirements.txt`` pinned from the model's manifest, a ``Dockerfile`` on the Python
version the model was saved with, and ``entrypoint.sh``, which runs
``python -m mloop serve`` on the copied model (``HOST``, ``PORT``, ``WORKERS`` and extra
arguments configure it).

>>> import tempfile, pandas as pd
>>> from pathlib import Path
>>> from sklearn.linear_model import LinearRegression
>>> from mloop.registry import save_model
>>> tmp = Path(tempfile.mkdtemp())
>>> X = pd.DataFrame({"x": [0.0, 1.0]})
>>> _ = save_model(LinearRegression().fit(X, [0.0, 1.0]), tmp / "m", input_example=X)
>>> files = build_context(str(tmp / "m"), tmp / "ctx")
>>> sorted(files)
['.dockerignore', 'Dockerfile', 'entrypoint.sh', 'model', 'requirements.txt']
>>> "scikit-learn==" in (tmp / "ctx" / "requirements.txt").read_text()
True
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from mloop.errors import InvalidInputError

__all__ = ["build_context"]

DOCKERFILE = """\
# Built by `mloop build {uri}` (model {name} version {version}).
FROM python:{python}-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 MLOOP_HOME=/var/lib/mloop \\
    MLOOP_MODEL_DIR=/opt/model HOST=0.0.0.0 PORT=8080 WORKERS=1
# The host names clients use to reach the container (its service's DNS names), comma-separated; requests that
# name another host get 421, which stops DNS rebinding. '*' turns the check off.
ENV ALLOWED_HOSTS=""
WORKDIR /srv
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
    """Write the build context for ``model_uri`` into ``output``; returns the names written."""
    from mloop.registry.packaging import read_manifest, verify_files
    from mloop.registry.uri import parse_uri
    from mloop.serving.model import source_version

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
    target.mkdir(parents=True, exist_ok=True)
    shutil.copytree(folder, target / "model")
    requirements = [f"{pkg}=={ver}" for pkg, ver in sorted((manifest.get("requirements") or {}).items())]
    if not any(r.startswith("mloop==") for r in requirements):
        from mloop import __version__

        requirements.insert(0, f"mloop=={__version__}")
    requirements += list(extra_requirements or [])
    (target / "requirements.txt").write_text("\n".join(requirements) + "\n")
    python = ".".join(str(manifest.get("python") or "3.11").split(".")[:2])
    name = name or "model"
    version = version if version is not None else manifest.get("run_id") or "local"
    (target / "Dockerfile").write_text(DOCKERFILE.format(uri=model_uri, name=name, version=version, python=python))
    entry = target / "entrypoint.sh"
    entry.write_text(ENTRYPOINT % name)
    entry.chmod(0o755)
    (target / ".dockerignore").write_text("**/__pycache__\n**/*.pyc\n")
    return sorted(p.name for p in target.iterdir())
