"""What a run records about where it ran, without being asked."""

from __future__ import annotations

import functools
import importlib.metadata
import json
import os
import platform
import shlex
import socket
import subprocess
import sys
from pathlib import Path

# Imported module -> distribution, for the libraries whose versions decide a result.
ML_LIBRARIES = {
    "numpy": "numpy", "pandas": "pandas", "scipy": "scipy", "sklearn": "scikit-learn", "pyarrow": "pyarrow",
    "torch": "torch", "tensorflow": "tensorflow", "keras": "keras", "jax": "jax", "xgboost": "xgboost",
    "lightgbm": "lightgbm", "catboost": "catboost", "statsmodels": "statsmodels", "polars": "polars",
    "transformers": "transformers", "onnx": "onnx", "onnxruntime": "onnxruntime", "skops": "skops",
    "mloop": "mloop",
}


def imported_library_versions() -> dict[str, str]:
    """Versions of the ML libraries this process has imported."""
    found = {}
    for module, dist in ML_LIBRARIES.items():
        if module in sys.modules:
            version = _version(module, dist)
            if version:
                found[dist] = version
    return found


@functools.lru_cache(maxsize=64)
def _version(module: str, dist: str) -> str | None:
    """A distribution's version, looked up once per process: reading package metadata costs milliseconds
    per call (it scans sys.path), and an imported module's version cannot change while the process lives."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        version = getattr(sys.modules[module], "__version__", None)
        return str(version) if version else None


@functools.lru_cache(maxsize=8)
def git_state(directory: str) -> tuple[str, bool] | None:
    """(commit, dirty) of the git checkout holding ``directory``, or None outside one."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", directory, *args], capture_output=True, text=True, timeout=5,
                              check=True).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return commit, dirty


def run_context_tags() -> dict[str, str]:
    """Tags that make a run reproducible: code version, entry point, command, Python, host, libraries."""
    entry = sys.argv[0] if sys.argv and sys.argv[0] else ""
    entry_path = Path(entry).resolve() if entry and Path(entry).exists() else None
    directory = str(entry_path.parent if entry_path else Path.cwd())
    tags = {
        "mloop.source": str(entry_path) if entry_path else (entry or "<interactive>"),
        "mloop.command": shlex.join(sys.argv) if sys.argv else "",
        "mloop.python": platform.python_version(),
        "mloop.host": socket.gethostname(),
        "mloop.pid": str(os.getpid()),
        "mloop.libraries": json.dumps(imported_library_versions(), sort_keys=True),
    }
    state = git_state(directory)
    if state is not None:
        tags["mloop.git.commit"], dirty = state
        tags["mloop.git.dirty"] = "true" if dirty else "false"
    return tags
