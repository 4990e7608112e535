"""A wheel of the mloop that runs here, so a build context installs exactly this mloop.

The package index may have no such version (a checkout, a fork, a release not yet published) or a
different project under the name, so ``mloop build`` never pins ``mloop==<version>`` to be fetched:
it writes the running package's files, with the installed distribution's metadata (version,
dependencies, the ``mloop`` command), into a pure-Python wheel inside the context. Nothing is
downloaded or compiled; the same files give the same wheel, byte for byte.

>>> import tempfile, zipfile
>>> wheel = build_wheel(tempfile.mkdtemp())
>>> wheel.name.startswith("mloop-") and wheel.name.endswith("-py3-none-any.whl")
True
>>> "mloop/__init__.py" in zipfile.ZipFile(wheel).namelist()
True
"""

from __future__ import annotations

import base64
import hashlib
import re
import zipfile
from importlib import metadata as importlib_metadata
from pathlib import Path

from mloop.errors import MloopError

__all__ = ["build_wheel", "dependencies"]

# What setuptools puts into mloop's wheel (pyproject.toml's package data): anything else in a checkout's package
# folder (editor files, local notes) stays out.
_SUFFIXES = (".py", ".pyi", ".mako", ".html", ".css", ".js", "py.typed")
_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed times: the same files make the same wheel


def _distribution() -> importlib_metadata.Distribution:
    try:
        return importlib_metadata.distribution("mloop")
    except importlib_metadata.PackageNotFoundError:
        raise MloopError("mloop build needs mloop installed as a package (pip install mloop, or pip install -e "
                         "<checkout>): its metadata gives the wheel's version and dependencies.") from None


def dependencies() -> list[str]:
    """mloop's own requirements (``Requires-Dist`` without the extras'), as recorded when it was installed."""
    out = []
    for line in _distribution().requires or []:
        marker = line.partition(";")[2]
        if re.search(r"\bextra\s*==", marker):
            continue
        out.append(line)
    return out


def build_wheel(folder: str | Path) -> Path:
    """Write ``mloop-<version>-py3-none-any.whl`` of the running mloop into ``folder``; returns its path."""
    import mloop

    dist = _distribution()
    version = dist.version
    package = Path(mloop.__file__).resolve().parent
    info = f"mloop-{version}.dist-info"
    entries: list[tuple[str, bytes]] = []
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.name.endswith(_SUFFIXES):
            entries.append((f"mloop/{path.relative_to(package).as_posix()}", path.read_bytes()))
    metadata_text = dist.read_text("METADATA") or dist.read_text("PKG-INFO")  # a dist-info, or a checkout's egg-info
    if not metadata_text:
        raise MloopError(f"The installed mloop {version} has no METADATA; reinstall it (pip install -e <checkout>).")
    entries.append((f"{info}/METADATA", metadata_text.encode()))
    entries.append((f"{info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: mloop build\nRoot-Is-Purelib: true\n"
                                     b"Tag: py3-none-any\n"))
    entry_points = dist.read_text("entry_points.txt")
    if entry_points:
        entries.append((f"{info}/entry_points.txt", entry_points.encode()))
    record = "".join(f"{name},sha256={_digest(data)},{len(data)}\n" for name, data in entries)
    entries.append((f"{info}/RECORD", (record + f"{info}/RECORD,,\n").encode()))
    target = Path(folder) / f"mloop-{version}-py3-none-any.whl"
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as wheel:
        for name, data in entries:
            item = zipfile.ZipInfo(name, date_time=_EPOCH)
            item.compress_type = zipfile.ZIP_DEFLATED
            item.external_attr = 0o644 << 16
            wheel.writestr(item, data)
    return target


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
