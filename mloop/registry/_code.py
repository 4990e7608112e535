"""What a model needs besides its files: pip requirements, and the user's own code (``code_paths``).

``log_model(..., pip_requirements=[...])`` replaces the requirements mloop infers (mloop and the
flavor's libraries at their installed versions); ``extra_pip_requirements=[...]`` adds to them.
Each line is a PEP 508 requirement (``"pandas>=2"``, ``"mylib==1.2; python_version>='3.11'"``):
no pip options (``--index-url`` would redirect every install made from the model), no URLs
(they would fetch from anywhere but the package index).

``code_paths=["mymodule.py", "mypkg"]`` copies those files and packages into the model under
``code/``; loading the model puts that folder first on ``sys.path``, so a class defined in the
user's module unpickles in another process and another folder. Importing that code runs it, so a
model that carries code loads only with ``trusted=True`` (see ``mloop.registry.flavors._trust``).

>>> lines, pins = requirements_for(["pandas>=2", "scikit-learn==1.5.2"], None, {})
>>> lines, pins
(['pandas>=2', 'scikit-learn==1.5.2'], {'scikit-learn': '1.5.2'})
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import threading
from pathlib import Path
from typing import Any

from mloop.errors import InvalidInputError

__all__ = ["CODE_DIR", "CodePlan", "activate_code", "canonical_name", "check_requirements", "copy_code",
           "parse_requirement", "plan_code_paths", "requirements_for"]

CODE_DIR = "code"
MAX_CODE_FILES = 2_000
MAX_CODE_BYTES = 50 * 1024 * 1024
MAX_REQUIREMENTS = 500
_SKIPPED_DIRS = {"__pycache__", ".git", ".hg", ".svn", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".venv"}
_SKIPPED_SUFFIXES = (".pyc", ".pyo")


def requirements_for(pip_requirements: list[str] | None, extra_pip_requirements: list[str] | None,
                     inferred: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The requirement lines of a model and the exact pins among them (``{name: version}``).

    ``inferred`` (``{distribution: installed version}``) is used unless ``pip_requirements`` replaces it;
    ``extra_pip_requirements`` are added either way, a line for a package already listed replacing that line.
    """
    if pip_requirements is not None:
        base = check_requirements("pip_requirements", pip_requirements)
    else:
        base = [f"{name}=={version}" for name, version in inferred.items()]
    extra = check_requirements("extra_pip_requirements", extra_pip_requirements) if extra_pip_requirements else []
    by_name: dict[str, str] = {}
    for line in base + extra:
        by_name[canonical_name(parse_requirement(line, "requirements").name)] = line
    lines = list(by_name.values())
    pins: dict[str, str] = {}
    for line in lines:
        req = parse_requirement(line, "requirements")
        specs = list(req.specifier)
        if len(specs) == 1 and specs[0].operator == "==" and "*" not in specs[0].version:
            pins[req.name] = specs[0].version
    return lines, pins


def canonical_name(name: str) -> str:
    """A distribution name as the package index compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def check_requirements(field: str, value: Any) -> list[str]:
    """``value`` as a list of stripped requirement lines, each checked by ``parse_requirement``."""
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise InvalidInputError(field=field, value=value,
                                expected="a list of requirement strings such as ['pandas>=2', 'mylib==1.2']")
    if len(value) > MAX_REQUIREMENTS:
        raise InvalidInputError(field=field, value=f"{len(value)} lines", expected=f"at most {MAX_REQUIREMENTS}")
    lines = []
    for i, line in enumerate(value):
        if not isinstance(line, str):
            raise InvalidInputError(field=f"{field}[{i}]", value=line, expected="a requirement string")
        parse_requirement(line.strip(), f"{field}[{i}]")
        lines.append(line.strip())
    return lines


# pip reads a requirements file with its own syntax before any PEP 508 parsing: it splits options off at a space
# followed by '-' (even inside a marker's quoted string), expands ${VAR}, drops ' #' comments and joins lines ending
# in '\\'; non-printable characters split lines (str.splitlines) or hide text in a terminal (ESC, bidi controls).
_PIP_SYNTAX = re.compile(r"\s-|[$#\\]")
_PLAIN_LINE = ("a PEP 508 requirement without ' -', '$', '#', '\\' or control characters (pip would read them as "
               "options, environment variables, comments or line joins), such as "
               "'pandas[performance]>=2; python_version >= \"3.11\"'")


def parse_requirement(line: str, field: str) -> Any:
    """``line`` as a ``packaging`` Requirement, or InvalidInputError naming ``field`` (options and URLs too, and
    anything pip would read differently from ``packaging``: see ``_PIP_SYNTAX``).

    >>> str(parse_requirement('pandas[performance]>=2; python_version >= "3.11"', "pip_requirements[0]").marker)
    'python_version >= "3.11"'
    """
    from packaging.requirements import InvalidRequirement, Requirement

    expected = ("a PEP 508 requirement such as 'pandas>=2' or 'mylib==1.2' (no pip options such as "
                "--index-url, no URLs: requirements install from the package index)")
    if not line or line.startswith("-") or len(line) > 1000:
        raise InvalidInputError(field=field, value=line, expected=expected)
    if _PIP_SYNTAX.search(line) or not line.isprintable():
        raise InvalidInputError(field=field, value=line, expected=_PLAIN_LINE)
    try:
        req = Requirement(line)
    except InvalidRequirement:
        raise InvalidInputError(field=field, value=line, expected=expected) from None
    if req.url:
        raise InvalidInputError(field=field, value=line, expected=expected)
    return req


# {name under code/: [(source file, path under code/)]}
CodePlan = dict[str, list[tuple[Path, str]]]


def plan_code_paths(code_paths: list[str | os.PathLike[str]] | None) -> CodePlan:
    """Check ``code_paths`` and list the files to copy (nothing is written yet).

    Each entry is an existing ``.py`` file or a folder (a package), stored under its own name; a symlink
    inside a folder is followed only when it stays inside that folder, so nothing outside the paths the user
    named is copied. At most ``MAX_CODE_FILES`` files and ``MAX_CODE_BYTES`` bytes in all (a path such as the
    home folder given by mistake is refused, not copied).
    """
    if code_paths is None:
        return {}
    if isinstance(code_paths, str | os.PathLike) or not isinstance(code_paths, list | tuple):
        raise InvalidInputError(field="code_paths", value=code_paths,
                                expected="a list of paths to .py files or package folders")
    plan: CodePlan = {}
    for i, entry in enumerate(code_paths):
        field = f"code_paths[{i}]"
        if not isinstance(entry, str | os.PathLike):
            raise InvalidInputError(field=field, value=entry, expected="a path to a .py file or a package folder")
        source = Path(entry).expanduser()
        if not source.exists():
            raise InvalidInputError(field=field, value=str(entry), expected="an existing .py file or folder")
        source = source.resolve()
        name = source.name
        if source.is_file():
            if source.suffix != ".py" or not source.stem.isidentifier():
                raise InvalidInputError(field=field, value=str(entry),
                                        expected="a .py file named like a module (mymodule.py) or a package folder")
            files = [(source, name)]
        else:
            if not name.isidentifier():
                raise InvalidInputError(field=field, value=str(entry),
                                        expected="a package folder named like a module (letters, digits, '_')")
            files = _package_files(source, name, field)
        if name in plan:
            raise InvalidInputError(field=field, value=str(entry),
                                    expected=f"paths with distinct names; '{name}' is given twice")
        plan[name] = files
    everything = [f for files in plan.values() for f in files]
    total = sum(src.stat().st_size for src, _ in everything)
    if len(everything) > MAX_CODE_FILES or total > MAX_CODE_BYTES:
        raise InvalidInputError(field="code_paths", value=f"{len(everything)} files, {total} bytes",
                                expected=f"at most {MAX_CODE_FILES} files and {MAX_CODE_BYTES >> 20} MiB: name "
                                         "the modules the model needs, not a whole tree")
    return plan


def copy_code(plan: CodePlan, folder: Path) -> list[str]:
    """Copy the planned files into ``folder/code/``; returns the top-level names there."""
    for files in plan.values():
        for src, rel in files:
            target = folder / CODE_DIR / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
    return sorted(plan)


def _package_files(root: Path, name: str, field: str) -> list[tuple[Path, str]]:
    out: list[tuple[Path, str]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        # a symlinked folder is not walked (followlinks=False): only what lies inside ``root`` is copied
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIPPED_DIRS and not d.endswith(".egg-info"))
        for filename in sorted(filenames):
            path = here / filename
            if filename.endswith(_SKIPPED_SUFFIXES) or not _inside(path, root, field) or not path.is_file():
                continue
            out.append((path.resolve(), f"{name}/{path.relative_to(root).as_posix()}"))
            if len(out) > MAX_CODE_FILES:
                raise InvalidInputError(field=field, value=str(root),
                                        expected=f"a package of at most {MAX_CODE_FILES} files")
    return out


def _inside(path: Path, root: Path, field: str) -> bool:
    """Whether ``path`` (a symlink perhaps) resolves inside ``root``; a link that leaves it is refused."""
    if not path.is_symlink():
        return True
    if path.resolve().is_relative_to(root):
        return True
    raise InvalidInputError(field=field, value=str(path),
                            expected=f"files inside {root}: this symlink points outside it")


_activate_lock = threading.Lock()


def activate_code(folder: Path) -> str:
    """Put the model's ``code/`` folder first on ``sys.path`` (once); returns it.

    A module already imported under the same name stays the one Python uses (``sys.modules`` wins), so two
    models that carry different versions of one module cannot both be loaded in one process.
    """
    path = str((folder / CODE_DIR).resolve())
    with _activate_lock:
        if path not in sys.path:
            sys.path.insert(0, path)
    return path
