"""The registry's main scenarios in both modes: the stores directly, and through a live ``mloop server``.

The same test body runs twice (``mode_settings``); in server mode the client's home must stay free of a database
and of artifacts, which shows that nothing reached past the server.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mloop.config import Settings
from mloop.errors import AlreadyExistsError, ConflictError, InvalidInputError, NotFoundError
from mloop.registry import RegistryClient, load_model, registry_for
from mloop.registry._http import HttpRegistryClient
from mloop.tracking import TrackingClient
from tests.registry.conftest import log_version


def _reached_no_store(settings: Settings) -> None:
    """In server mode: no metadata database and no artifact folder in the client's home."""
    if settings.remote:
        home = Path(settings.home)
        assert not list(home.rglob("*.db")), list(home.rglob("*.db"))
        assert not (home / "artifacts").exists()


def test_the_transport_follows_the_settings(mode_settings: Settings) -> None:
    registry = registry_for(mode_settings)
    assert isinstance(registry, HttpRegistryClient) is mode_settings.remote
    # a RegistryClient built by hand takes the same transport: no call site can slip past the server
    assert isinstance(RegistryClient(mode_settings), HttpRegistryClient) is mode_settings.remote


def test_models_versions_and_aliases(mode_settings: Settings, pipeline, frame) -> None:  # type: ignore[no-untyped-def]
    registry = registry_for(mode_settings)
    tracking = TrackingClient(mode_settings)
    created = registry.create_model("eta", description="minutes to arrival", tags={"team": "maps"})
    assert (created.name, created.description, created.tags) == ("eta", "minutes to arrival", {"team": "maps"})
    updated = registry.update_model("eta", description="eta in minutes", tags={"tier": "1"})
    assert updated.description == "eta in minutes" and updated.tags == {"team": "maps", "tier": "1"}
    registry.delete_tag("eta", "tier")
    assert registry.get_model("eta").tags == {"team": "maps"}

    first = log_version(tracking, pipeline, frame, metrics={"mae": 2.5})
    second = log_version(tracking, pipeline, frame, metrics={"mae": 1.5})
    assert (first.version, second.version, second.metrics["mae"]) == (1, 2, 1.5)
    again = registry.register("eta", f"runs:/{first.run_id}/model", description="re-registered", tags={"k": "v"})
    assert (again.version, again.run_id, again.tags) == (3, first.run_id, {"k": "v"})
    assert [v.version for v in registry.list_versions("eta")] == [1, 2, 3]
    assert [v.version for v in registry.list_versions()] == [1, 2, 3]
    assert registry.update_version("eta", 3, description="third", tags={"x": "1"}).tags == {"k": "v", "x": "1"}
    registry.delete_tag("eta", "x", version=3)
    assert registry.get_version("eta", 3).tags == {"k": "v"}

    assert registry.set_alias("eta", "champion", 1) is None
    assert registry.set_alias("eta", "champion", 2) == 1
    with pytest.raises(ConflictError, match="someone moved it meanwhile"):
        registry.set_alias("eta", "champion", 3, expected=1)
    assert registry.set_alias("eta", "champion", 3, expected=2) == 2
    assert registry.get_alias("eta", "champion").version == 3
    assert registry.resolve("models:/eta@champion").version == 3
    assert registry.resolve("models:/eta/latest").version == 3
    assert registry.get_model("eta").aliases == {"champion": 3}
    registry.delete_alias("eta", "champion")
    with pytest.raises(NotFoundError, match=r"Model 'eta' has no alias 'champion'\. Its aliases: \[\]\."):
        registry.get_alias("eta", "champion")
    assert [m.name for m in registry.list_models()] == ["eta"]
    assert registry.manifest("eta", 2)["flavor"] == "sklearn"
    assert registry.lineage("eta", 2)["run"]["run_id"] == second.run_id

    actions = [(e.action, e.target) for e in registry.audit("eta")]
    assert actions[0] == ("alias.deleted", "models/eta/aliases/champion")
    assert {"model.created", "model.updated", "version.created", "alias.set"} <= {a for a, _ in actions}
    # nobody authenticates here: both modes record the (same) local user name as the actor
    assert {e.actor for e in registry.audit("eta")} == {Settings.load().user}
    registry.delete_version("eta", 3)
    assert [v.version for v in registry.list_versions("eta")] == [1, 2]
    registry.set_alias("eta", "champion", 2)
    with pytest.raises(ConflictError, match="force"):  # a version an alias points at is guarded
        registry.delete_model("eta")
    registry.delete_model("eta", force=True)
    assert registry.list_models() == []
    with pytest.raises(NotFoundError, match="No registered model named 'eta'"):
        load_model("models:/eta/1", client=registry)
    _reached_no_store(mode_settings)


def test_load_model_predicts_as_the_trained_model(mode_settings: Settings, pipeline, frame,  # type: ignore[no-untyped-def]
                                                  ) -> None:
    import mloop

    version = log_version(TrackingClient(mode_settings), pipeline, frame)
    registry_for(mode_settings).set_alias("eta", "champion", version.version)
    expected = pipeline.predict(frame)
    for uri in ("models:/eta@champion", "models:/eta/1", "models:/eta/latest", f"runs:/{version.run_id}/model"):
        loaded = mloop.load_model(uri)
        np.testing.assert_allclose(loaded.predict(frame), expected)
    loaded = load_model("models:/eta@champion", client=registry_for(mode_settings))
    assert (loaded.name, loaded.version, loaded.run_id) == ("eta", 1, version.run_id)
    assert loaded.input_example() is not None
    _reached_no_store(mode_settings)


def test_a_changed_file_is_refused_in_both_modes(mode_settings: Settings, pipeline, frame,  # type: ignore[no-untyped-def]
                                                 ) -> None:
    """A model file whose bytes differ from the manifest never loads, wherever it came from."""
    log_version(TrackingClient(mode_settings), pipeline, frame)
    registry = registry_for(mode_settings)
    storage, *_ = registry.locate(_ref("models:/eta/1"))
    folder = registry.local_folder(storage)
    manifest = registry.manifest("eta", 1)
    victim = folder / next(iter(manifest["files"]))
    original = victim.read_bytes()
    victim.write_bytes(original + b"tampered")
    try:
        with pytest.raises(ConflictError, match="corrupt or was changed"):
            load_model("models:/eta/1", client=registry, cache=False)
    finally:
        victim.write_bytes(original)


def test_errors_have_the_same_type_and_message(mode_settings: Settings, pipeline, frame,  # type: ignore[no-untyped-def]
                                               ) -> None:
    registry = registry_for(mode_settings)
    with pytest.raises(NotFoundError) as unknown:
        registry.get_model("nope")
    assert (str(unknown.value), unknown.value.field) == ("No registered model named 'nope'.", "name")
    with pytest.raises(NotFoundError, match="No registered model named 'nope'"):
        load_model("models:/nope@champion")
    with pytest.raises(NotFoundError, match="No registered model named 'nope'"):
        registry.list_versions("nope")
    logged = log_version(TrackingClient(mode_settings), pipeline, frame)
    with pytest.raises(AlreadyExistsError, match="A registered model named 'eta' already exists"):
        registry.create_model("eta")
    with pytest.raises(NotFoundError, match=r"Model 'eta' has no version 4 \(latest is 1\)\.") as missing:
        registry.get_version("eta", 4)  # a message with "(latest is 1)"
    assert missing.value.field == "version"
    for call in (lambda: registry.get_version("eta", 0), lambda: registry.set_alias("eta", "champion", "x")):
        with pytest.raises(InvalidInputError) as bad:
            call()
        assert bad.value.field == "version"
    with pytest.raises(InvalidInputError) as alias:
        registry.set_alias("eta", "12", 1)
    assert alias.value.field == "alias"
    with pytest.raises(NotFoundError, match="has no model at .model. \\(no mloop-model.yaml\\)"):
        registry.register("eta", "runs:/" + "0" * 32 + "/model")
    with pytest.raises(NotFoundError, match="No registered model named 'other'"):
        registry.register("other", f"runs:/{logged.run_id}/model", create=False)
    _reached_no_store(mode_settings)


def test_environments_approvals_and_rules(mode_settings: Settings, pipeline, frame) -> None:  # type: ignore[no-untyped-def]
    from mloop.registry import ApprovalRequest, Deployment

    tracking = TrackingClient(mode_settings)
    for mae in (3.0, 1.0, 2.0):
        log_version(tracking, pipeline, frame, metrics={"mae": mae})
    environments = registry_for(mode_settings).environments
    assert environments.create("staging")["requires_approval"] is False
    environments.create("prod", description="live traffic", requires_approval=True)
    direct = environments.deploy("eta", 1, "staging", reason="smoke")
    assert isinstance(direct, Deployment) and (direct.version, direct.previous) == (1, None)
    asked = environments.deploy("eta", 2, "prod", reason="better mae")
    assert isinstance(asked, ApprovalRequest) and asked.status == "pending"
    assert [r.id for r in environments.pending("prod")] == [asked.id]
    assert environments.request(asked.id).reason == "better mae"
    done = environments.approve(asked.id, "looks good")
    assert (done.env, done.version) == ("prod", 2) and environments.current("eta", "prod") == 2
    assert environments.get("prod")["models"] == {"eta": 2}
    assert [(h.env, h.version) for h in environments.history(name="eta")] == [("prod", 2), ("staging", 1)]
    environments.undeploy("eta", "staging")
    assert environments.current("eta", "staging") is None
    with pytest.raises(NotFoundError, match="No environment named 'qa'"):
        environments.current("eta", "qa")

    rules = registry_for(mode_settings).rules
    rule = {"name": "best-mae", "given": "name = 'eta'", "select": "metrics.mae asc", "alias": "champion"}
    assert rules.save(rule) == 1
    assert [r["name"] for r in rules.list()] == ["best-mae"]
    assert rules.evaluate("best-mae").winner["version"] == 2
    applied = rules.apply("best-mae")
    assert applied.applied and registry_for(mode_settings).get_alias("eta", "champion").version == 2
    assert "selected eta v2" in applied.explain()
    _reached_no_store(mode_settings)


def test_the_cli_works_in_both_modes(mode_settings: Settings, pipeline, frame,  # type: ignore[no-untyped-def]
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from mloop.cli import _register, app
    from mloop.cli._app import console

    monkeypatch.setattr(console, "_width", 300)
    log_version(TrackingClient(mode_settings), pipeline, frame)
    _register()

    def run(*args: str) -> str:
        result = CliRunner().invoke(app, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    assert "eta@champion: new -> v1" in run("models", "alias", "eta", "champion", "1")
    assert "champion=v1" in run("models", "list")
    assert "sklearn" in run("models", "show", "eta", "1")
    assert "alias.set" in run("models", "audit", "--model", "eta")
    run("models", "env", "create", "prod")
    assert "prod: eta v- -> v1" in run("models", "env", "deploy", "eta", "1", "prod")
    _reached_no_store(mode_settings)


def _ref(uri: str):  # type: ignore[no-untyped-def]
    from mloop.registry.uri import parse_uri

    return parse_uri(uri)


def test_extra_files_lineage_and_webhooks(mode_settings: Settings, pipeline, frame) -> None:  # type: ignore[no-untyped-def]
    import mloop

    tracking = TrackingClient(mode_settings)
    with tracking.start_run("eta-exp", run_class=mloop.ActiveRun) as run:
        dataset = run.log_input(frame, name="train", context="train")
        version = run.log_model(pipeline, name="eta", input_example=frame.head(3),
                                extra_files={"notes.json": {"why": "parity"}}, metadata={"team": "maps"})
    registry = registry_for(mode_settings)
    assert b'"parity"' in registry.extra_file("eta", version.version, "notes.json")
    with pytest.raises(NotFoundError, match=r"has no extra file 'other.json'; it has \['notes.json'\]"):
        registry.extra_file("eta", version.version, "other.json")
    loaded = mloop.load_model("models:/eta/1")
    assert loaded.metadata == {"team": "maps"} and loaded.extra_file("notes.json").is_file()
    assert [v.version for v in registry.versions_trained_on(dataset.digest)] == [1]
    assert [d["digest"] for d in registry.lineage("eta", 1)["datasets"]] == [dataset.digest]

    # a destination that does not resolve is refused alike (a real delivery is tests/registry/test_webhooks.py's)
    with pytest.raises(InvalidInputError, match="does not resolve") as refused:
        registry.webhooks.add("https://nowhere.invalid/hook", "s" * 32, events=["alias.set"], model="eta")
    assert refused.value.field == "url" and "s" * 32 not in str(refused.value)
    with pytest.raises(InvalidInputError) as short:
        registry.webhooks.add("https://nowhere.invalid/hook", "short")
    assert short.value.field == "secret" and "short" not in str(short.value)
    assert registry.webhooks.list() == []
    with pytest.raises(NotFoundError, match="No webhook 999"):
        registry.webhooks.remove(999)
    _reached_no_store(mode_settings)


def test_a_local_model_folder_registers_in_both_modes(mode_settings: Settings, tmp_path: Path, pipeline,  # type: ignore[no-untyped-def]
                                                      frame) -> None:
    """Through a server the folder is uploaded and checked there; the version records the same source."""
    from mloop.registry import save_model

    save_model(pipeline, tmp_path / "m", input_example=frame.head(3))
    registry = registry_for(mode_settings)
    with TrackingClient(mode_settings).start_run("folders") as run:
        pass
    version = registry.register("local-model", tmp_path / "m", description="from disk", run_id=run.run_id)
    assert (version.version, version.run_id, version.source) == (1, run.run_id, str(tmp_path / "m"))
    assert version.storage.startswith("models/") and version.description == "from disk"
    np.testing.assert_allclose(load_model("models:/local-model/1").predict(frame), pipeline.predict(frame))
    with pytest.raises(NotFoundError, match="No registered model named 'absent'"):
        registry.register("absent", tmp_path / "m", create=False)

    (tmp_path / "m" / "input_example.json").write_text("[]")  # now the folder disagrees with its manifest
    with pytest.raises(ConflictError, match="'input_example.json' is corrupt or was changed"):
        registry.register("local-model", tmp_path / "m")
    assert [v.version for v in registry.list_versions("local-model")] == [1]
    assert [m.name for m in registry.list_models()] == ["local-model"]
    _reached_no_store(mode_settings)
