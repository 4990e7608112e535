"""One task, inside its worker process: load inputs lazily, run the step, store what it assigned.

Nothing here touches the metadata database; the orchestrator records what the task returns.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import time
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from mloop.flows.artifacts import ArtifactRef, ArtifactStore
from mloop.flows.spec import _MISSING, FlowSpec

_modules: dict[str, list[type[FlowSpec]]] = {}  # flow file -> its classes: each file is imported once
_stores: dict[str, ArtifactStore] = {}


def load_flow(file: str, class_name: str | None = None) -> type[FlowSpec]:
    """The FlowSpec subclass defined in ``file`` (the only one, or ``class_name``)."""
    from mloop.errors import InvalidInputError

    found = flow_classes(file)
    if class_name:
        found = [v for v in found if v.__name__ == class_name]
    if len(found) != 1:
        names = [v.__name__ for v in found]
        hint = f" (found {names}; pick one with --flow)" if names else ""
        raise InvalidInputError(field="flow", value=class_name or names,
                                expected=f"exactly one FlowSpec class in {file}{hint}")
    return found[0]


def flow_classes(file: str) -> list[type[FlowSpec]]:
    """Every FlowSpec subclass defined in ``file``, importing it once; errors of the file are user errors."""
    from mloop.errors import InvalidInputError

    path = Path(file).resolve()
    if str(path) in _modules:
        return _modules[str(path)]
    if not path.is_file() or path.suffix != ".py":
        raise InvalidInputError(field="flow file", value=file, expected="an existing .py file defining a FlowSpec")
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
    name = f"_mloop_flow_{path.stem}_{digest}"
    module = _import_file(name, path, file)
    try:
        import cloudpickle

        cloudpickle.register_pickle_by_value(module)  # classes of the flow file travel with the artifacts
    except (ImportError, ValueError):
        pass
    found = [v for v in vars(module).values()
             if isinstance(v, type) and issubclass(v, FlowSpec) and v is not FlowSpec and v.__module__ == name]
    _modules[str(path)] = found
    return found


def _import_file(name: str, path: Path, shown: str) -> ModuleType:
    """Run ``path`` as module ``name``; what it raises becomes a FlowDefinitionError with the user's frames."""
    from mloop.errors import MloopError

    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None  # a .py file always has a source loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    except MloopError as exc:  # mloop's own checks (a bad @retry, ...) say what is wrong; add where
        sys.modules.pop(name, None)
        raise _located(exc, path.parent) from None
    except Exception as exc:
        sys.modules.pop(name, None)  # a fixed file imports afresh next time, as with ``import``
        raise _import_error(exc, path.parent, shown) from None
    return module


def _located(exc: Exception, folder: Path) -> Exception:
    """``exc`` with the file:line of the user's code that raised it in front, when a user frame is known."""
    from mloop.flows.graph import FlowDefinitionError

    frames = _user_frames(exc, folder)
    if not frames:
        return exc
    return FlowDefinitionError(f"{_where(frames[-1], folder)}: {exc}", field=getattr(exc, "field", None) or "flow file")


def _import_error(exc: Exception, folder: Path, shown: str) -> Exception:
    """The error of a flow file that failed to import: where (the innermost line of the user's own files), what,
    and the traceback of those files only; mloop's and importlib's frames would only hide the user's."""
    from mloop.flows.graph import FlowDefinitionError

    frames = _user_frames(exc, folder)
    if isinstance(exc, SyntaxError) and exc.filename:  # no frame: the line that does not parse is the place
        where = f"{_relative(exc.filename, folder)}:{exc.lineno}"
    else:
        where = _where(frames[-1], folder) if frames else shown
    message = exc.msg if isinstance(exc, SyntaxError) else str(exc)  # str() of a SyntaxError repeats the place
    header = ["Traceback (most recent call last):\n"] if frames else []
    detail = "".join(header + traceback.format_list(frames) + traceback.format_exception_only(type(exc), exc))
    return FlowDefinitionError(f"could not import {shown}: {type(exc).__name__}: {message} ({where})\n"
                               f"{detail.rstrip()}", field="flow file")


def _user_frames(exc: BaseException, folder: Path) -> list[traceback.FrameSummary]:
    return [f for f in traceback.extract_tb(exc.__traceback__) if _is_users(f.filename, folder)]


def _where(frame: traceback.FrameSummary, folder: Path) -> str:
    return f"{_relative(frame.filename, folder)}:{frame.lineno}"


def _is_users(filename: str, folder: Path) -> bool:
    """A frame of the flow file or of a module beside it (or below it), not of mloop or importlib."""
    if filename.startswith("<"):  # <frozen importlib._bootstrap>, <string>: no file of the user's
        return False
    path = Path(filename).resolve()
    return path.is_relative_to(folder) and not path.is_relative_to(Path(__file__).resolve().parents[1])


def _relative(filename: str, folder: Path) -> str:
    path = Path(filename).resolve()
    return str(path.relative_to(folder)) if path.is_relative_to(folder) else filename


def artifact_store(root: str) -> ArtifactStore:
    """The content-addressed store at ``root``: an artifact root, or an mloop server's URL (bytes through it)."""
    remote = root.startswith(("http://", "https://"))
    if remote:  # one store per token: a process that changes MLOOP_TOKEN talks with the new one
        from mloop.auth.credentials import token_for

        key = f"{root}\n{token_for(root)}"
    else:
        key = root
    store = _stores.get(key)
    if store is None:
        if remote:
            from mloop.flows._http_store import HttpArtifactStore

            store = _stores[key] = HttpArtifactStore(root)
        else:
            from mloop.store.blob import open_blob_store

            store = _stores[key] = ArtifactStore(open_blob_store(root))
    return store


class _Loader:
    """Reads an artifact of an input index from the store on first access."""

    def __init__(self, store: ArtifactStore, index: dict[str, Any]) -> None:
        self.store = store
        self.index = index

    def __call__(self, name: str) -> Any:
        ref = self.index.get(name)
        if ref is None:
            return _MISSING
        return self.store.load(ref)


class InputView:
    """One input of a join: its artifacts as attributes (``inp.model``), its step as ``inp.step``."""

    def __init__(self, step: str, index: dict[str, Any], store: ArtifactStore) -> None:
        self.step = step
        self._index = index
        self._load = _Loader(store, index)
        self._cache: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or "_cache" not in self.__dict__:  # protocols, or not yet built (unpickling)
            raise AttributeError(name)
        if name not in self._cache:
            value = self._load(name)
            if value is _MISSING:
                raise AttributeError(f"input from step '{self.step}' has no artifact '{name}'")
            self._cache[name] = value
        return self._cache[name]

    def __repr__(self) -> str:
        return f"<input from {self.step}: {sorted(self._index)}>"


class Inputs(list):  # type: ignore[type-arg]
    """The inputs of a join, in branch or foreach order; ``inputs.<step>`` picks a branch by step name."""

    def __getattr__(self, name: str) -> InputView:
        for view in self:
            if view.step == name:
                return view
        raise AttributeError(f"no input from a step named '{name}'")

    def merge_into(self, flow: FlowSpec, exclude: set[str]) -> None:
        names: dict[str, set[str]] = {}
        for view in self:
            for key, ref in view._index.items():
                names.setdefault(key, set()).add(ref[0])
        conflicts = sorted(k for k, shas in names.items() if len(shas) > 1 and k not in exclude
                           and k not in flow.__dict__)
        if conflicts:
            from mloop.errors import InvalidInputError

            raise InvalidInputError(f"merge_artifacts: inputs disagree on {conflicts}; assign them yourself "
                                    "or pass exclude=[...].", field="merge_artifacts")
        for key in names:
            if key in exclude or key in flow.__dict__ or key in flow._loader.index:  # type: ignore[union-attr]
                continue
            for view in self:
                if key in view._index:
                    flow._loader.index[key] = view._index[key]  # type: ignore[union-attr]
                    break


def common_index(indexes: list[dict[str, Any]]) -> dict[str, Any]:
    """Artifacts every input has with the same content: they pass through a join untouched."""
    if not indexes:
        return {}
    first = indexes[0]
    return {k: v for k, v in first.items() if all(k in i and i[k][0] == v[0] for i in indexes[1:])}


def execute(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one task described by ``spec``; returns artifacts, transition and timings, or the error."""
    from mloop.flows._current import current

    started = time.time()
    store = artifact_store(spec["artifact_root"])
    current._enter(spec)
    try:
        flow_cls = load_flow(spec["flow_file"], spec["flow_class"])
        flow = flow_cls()
        inputs = spec["inputs"]
        indexes = [{k: tuple(v) for k, v in inp["artifacts"].items()} for inp in inputs]
        index = dict(indexes[0]) if len(indexes) == 1 else common_index(indexes)
        object.__setattr__(flow, "_loader", _Loader(store, index))
        if spec.get("foreach_var"):
            items = getattr(flow, spec["foreach_var"])
            object.__setattr__(flow, "input", items[spec["foreach_index"]])
            object.__setattr__(flow, "index", spec["foreach_index"])
        method = getattr(flow, spec["step"])
        if spec.get("join"):
            method(Inputs(InputView(inp["step"], idx, store) for inp, idx in zip(inputs, indexes, strict=True)))
        else:
            method()
        transition = flow._transition
        if transition is None and spec["step"] != "end":
            raise RuntimeError(f"step '{spec['step']}' finished without calling self.next(...)")
        out = dict(flow._loader.index)
        for name in sorted(flow._assigned):
            out[name] = _save(store, name, flow.__dict__[name])
        result: dict[str, Any] = {"ok": True, "artifacts": out, "transition": None}
        if transition is not None:
            result["transition"] = {"steps": transition.steps, "foreach": transition.foreach,
                                    "condition": transition.condition}
            if transition.foreach:
                result["transition"]["count"] = len(getattr(flow, transition.foreach))
    except BaseException as exc:  # the user's code: report, never crash the worker silently
        tb = traceback.format_exc()
        sys.stderr.write(tb)
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": tb}
    finally:
        current._exit()
    result["seconds"] = time.time() - started
    return result


def _save(store: ArtifactStore, name: str, value: Any) -> tuple[Any, ...]:
    from mloop.flows.artifacts import encode

    try:
        data, encoding = encode(value)
    except Exception as exc:  # e.g. a lock or a generator: say which artifact it was
        raise TypeError(f"artifact '{name}' ({type(value).__name__}) cannot be stored: {exc}; keep it in a local "
                        "variable, or store what it holds") from exc
    return (store.put(data), encoding, len(data))  # a storage failure (disk full, S3) is reported as itself


def store_logs(store: ArtifactStore, log_dir: str) -> dict[str, str]:
    """Put the task's stdout and stderr files into the artifact store; returns their sha256s."""
    shas = {}
    for stream in ("stdout", "stderr"):
        path = os.path.join(log_dir, f"{stream}.log")
        try:
            with open(path, "rb") as f:
                shas[stream] = store.put(f.read())
        except FileNotFoundError:
            shas[stream] = store.put(b"")
    return shas


def as_refs(index: dict[str, Any]) -> dict[str, ArtifactRef]:
    return {k: ArtifactRef(*v) for k, v in index.items()}
