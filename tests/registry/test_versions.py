"""Registered models, versions and aliases against SQLite and PostgreSQL, including concurrency."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from mloop.errors import AlreadyExistsError, ConflictError, InvalidInputError, NotFoundError
from mloop.registry import RegistryClient, load_model, resolve_model_uri
from tests.registry.conftest import log_version


def test_log_model_registers_versions_with_metrics_snapshot(registry: RegistryClient, tracking, pipeline,
                                                            frame) -> None:
    v1 = log_version(tracking, pipeline, frame, metrics={"mae": 2.0, "rmse": 3.0})
    v2 = log_version(tracking, pipeline, frame, metrics={"mae": 1.5})
    assert (v1.version, v2.version) == (1, 2)
    assert v1.metrics == {"mae": 2.0, "rmse": 3.0} and v1.flavor == "sklearn"
    assert v1.source == f"runs:/{v1.run_id}/model" and v1.creator == "alice"
    assert [c["name"] for c in v1.signature["inputs"]] == ["distance_km", "hour", "weather"]
    assert registry.get_model("eta").latest_version == 2
    model = load_model("models:/eta/1", client=registry)
    assert (model.name, model.version, model.run_id) == ("eta", 1, v1.run_id)
    np.testing.assert_allclose(model.predict(frame), pipeline.predict(frame))
    assert load_model("models:/eta/latest", client=registry).version == 2
    with pytest.raises(NotFoundError, match="has no version 7"):
        registry.get_version("eta", 7)
    with pytest.raises(AlreadyExistsError):
        registry.create_model("eta")


def test_aliases_move_and_resolve(registry: RegistryClient, tracking, pipeline, frame) -> None:
    for _ in range(2):
        log_version(tracking, pipeline, frame)
    assert registry.set_alias("eta", "champion", 1) is None
    assert resolve_model_uri("models:/eta@champion", registry) == "models:/eta/1"
    assert registry.set_alias("eta", "champion", 2) == 1
    assert load_model("models:/eta@champion", client=registry).version == 2
    assert registry.get_model("eta").aliases == {"champion": 2}
    assert registry.get_version("eta", 2).aliases == ("champion",)
    with pytest.raises(ConflictError, match="points at version 2, not 1"):
        registry.set_alias("eta", "champion", 1, expected=1)
    with pytest.raises(NotFoundError, match="no alias 'gone'.*champion"):
        load_model("models:/eta@gone", client=registry)
    with pytest.raises(InvalidInputError, match="alias"):
        registry.set_alias("eta", "12", 1)
    registry.delete_alias("eta", "champion")
    assert registry.get_model("eta").aliases == {}
    actions = [(e.action, e.before, e.after) for e in registry.audit(model="eta", action="alias.set")]
    assert actions == [("alias.set", {"version": 1}, {"version": 2}), ("alias.set", None, {"version": 1})]


def test_concurrent_alias_moves_never_lose_an_update(registry: RegistryClient, tracking, pipeline, frame) -> None:
    for _ in range(3):
        log_version(tracking, pipeline, frame)
    registry.set_alias("eta", "champion", 1)
    errors: list[BaseException] = []

    def mover(i: int) -> None:
        try:
            for j in range(5):
                registry.set_alias("eta", "champion", (i + j) % 3 + 1)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=mover, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    chain = list(reversed(registry.audit(model="eta", action="alias.set", limit=1000)))
    assert len(chain) == 21
    for prev, cur in zip(chain, chain[1:], strict=False):
        assert cur.before == prev.after  # each move saw the one before it: none was lost
    assert registry.get_model("eta").aliases["champion"] == chain[-1].after["version"]


def test_concurrent_compare_and_set_counts_every_success(registry: RegistryClient, tracking, pipeline,
                                                         frame) -> None:
    for _ in range(2):
        log_version(tracking, pipeline, frame)
    registry.set_alias("eta", "ab", 1)
    wins: list[int] = []

    def flip() -> None:
        for _ in range(6):
            current = registry.get_alias("eta", "ab").version
            try:
                registry.set_alias("eta", "ab", 3 - current, expected=current)
                wins.append(1)
            except ConflictError:
                pass

    threads = [threading.Thread(target=flip) for _ in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert registry.get_alias("eta", "ab").version == (1 if len(wins) % 2 == 0 else 2)
    assert len(registry.audit(model="eta", action="alias.set", limit=1000)) == len(wins) + 1


def test_concurrent_registration_numbers_are_unique(registry: RegistryClient, tracking, pipeline, frame) -> None:
    log_version(tracking, pipeline, frame)
    version = registry.get_version("eta", 1)
    got: list[int] = []

    def register() -> None:
        for _ in range(3):
            got.append(registry.register("eta", version.source).version)

    threads = [threading.Thread(target=register) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(got) == list(range(2, 14))


def test_register_from_folder_and_delete_bytes(registry: RegistryClient, tmp_path, pipeline, frame) -> None:
    from mloop.registry import save_model

    save_model(pipeline, tmp_path / "m", input_example=frame)
    version = registry.register("local-model", tmp_path / "m")
    assert version.run_id is None and version.storage.startswith("models/")
    assert registry.blobs.list(version.storage)
    registry.set_alias("local-model", "champion", 1)
    with pytest.raises(ConflictError, match=r"in use \(aliases \['champion'\]"):
        registry.delete_version("local-model", 1)
    registry.delete_version("local-model", 1, force=True)
    assert registry.blobs.list(version.storage) == []
    assert registry.get_model("local-model").aliases == {}
    with pytest.raises(NotFoundError):
        load_model("models:/local-model/1", client=registry)


def test_register_rejects_bad_sources(registry: RegistryClient, tracking) -> None:
    with tracking.start_run("x") as run:
        pass
    with pytest.raises(NotFoundError, match="no model at 'model'"):
        registry.register("m", f"runs:/{run.run_id}/model")
    with pytest.raises(InvalidInputError, match="source"):
        registry.register("m", "models:/m/1")
    with pytest.raises(InvalidInputError, match="name"):
        registry.create_model("bad\nname")


def test_extra_files_of_a_registered_version(registry: RegistryClient, tracking, pipeline, frame) -> None:
    from mloop._sdk import ActiveRun

    with tracking.start_run("eta-exp", run_class=ActiveRun) as run:
        version = run.log_model(pipeline, name="eta", input_example=frame.head(3),
                                extra_files={"training_schema.json": {"distance_km": "float"}},
                                metadata={"profile": "training_schema.json"})
    assert registry.manifest("eta", version.version)["metadata"] == {"profile": "training_schema.json"}
    assert registry.artifact_uri("eta", 1).endswith(f"runs/{version.run_id}/artifacts/model")
    assert registry.extra_file("eta", 1, "training_schema.json") == b'{\n "distance_km": "float"\n}'
    assert load_model("models:/eta/1", client=registry).extra_files == ["training_schema.json"]
    with pytest.raises(NotFoundError, match="no extra file 'x.json'"):
        registry.extra_file("eta", 1, "x.json")


def test_register_is_all_or_nothing(registry: RegistryClient, tracking, pipeline, frame) -> None:
    version = log_version(tracking, pipeline, frame)
    with pytest.raises(NotFoundError, match="No registered model named 'other'"):
        registry.register("other", version.source, create=False)
    assert [m.name for m in registry.list_models()] == ["eta"] and registry.audit(model="other") == []
    tracking.delete_run(version.run_id)
    with pytest.raises(ConflictError, match="is deleted; restore it"):
        registry.register("eta", version.source)
    assert registry.get_model("eta").latest_version == 1
    tracking.restore_run(version.run_id)
    again = registry.register("eta", version.source, tags={"retry": "yes"})
    assert again == registry.get_version("eta", 2)  # what register returns is what is stored
    with pytest.raises(InvalidInputError, match="tags"):
        registry.register("eta", version.source, tags=["not", "a", "dict"])  # type: ignore[arg-type]


MOVER = """
import sys
from mloop.config import Settings
from mloop.registry import RegistryClient
registry = RegistryClient(Settings.load(home=sys.argv[1], db_url=sys.argv[2], user="p" + sys.argv[3]))
for j in range(6):
    registry.set_alias("eta", "champion", (int(sys.argv[3]) + j) % 3 + 1)
"""


def test_alias_moves_from_several_processes_are_all_kept(registry: RegistryClient, settings, tracking, pipeline,
                                                         frame) -> None:
    import subprocess
    import sys

    for _ in range(3):
        log_version(tracking, pipeline, frame)
    registry.set_alias("eta", "champion", 1)
    procs = [subprocess.Popen([sys.executable, "-c", MOVER, settings.home, settings.db_url, str(i)],
                              stderr=subprocess.PIPE, text=True) for i in range(3)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    chain = list(reversed(registry.audit(model="eta", action="alias.set", limit=1000)))
    assert len(chain) == 19 and {e.actor for e in chain[1:]} == {"p0", "p1", "p2"}
    for prev, cur in zip(chain, chain[1:], strict=False):
        assert cur.before == prev.after  # every process saw the move before its own: none was lost
    assert registry.get_alias("eta", "champion").version == chain[-1].after["version"]


def test_sdk_bad_input_is_named_on_every_backend(registry: RegistryClient) -> None:
    registry.create_model("m")
    calls = [
        ("description", lambda: registry.update_model("m", description=["x"])),
        ("description", lambda: registry.create_model("d", description=5)),
        ("version", lambda: registry.set_alias("m", "champion", "abc")),
        ("version", lambda: registry.get_version("m", 10**12)),  # beyond PostgreSQL's INTEGER: still clear
        ("model", lambda: registry.audit(model=5)),
        ("limit", lambda: registry.environments.history(limit="a")),
        ("requires_approval", lambda: registry.environments.create("e", requires_approval="yes")),
        ("request_id", lambda: registry.environments.approve("x")),
        ("events", lambda: registry.webhooks.add("http://127.0.0.1:1/x", "0123456789abcdef", events="alias.set")),
        ("digest", lambda: registry.versions_trained_on(None)),  # type: ignore[arg-type]
        ("rule", lambda: registry.rules.save(123)),  # type: ignore[arg-type]
        ("uri", lambda: load_model(123, client=registry)),  # type: ignore[arg-type]
    ]
    for field, call in calls:
        with pytest.raises(InvalidInputError) as info:
            call()
        assert info.value.field == field, info.value.message
