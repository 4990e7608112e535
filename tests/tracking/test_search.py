"""Search: the filter language end to end, ordering, best run and comparison."""

from __future__ import annotations

import math

import pytest

from mloop.errors import InvalidInputError, NotFoundError
from mloop.tracking import TrackingClient


@pytest.fixture
def populated(client: TrackingClient) -> dict[str, str]:
    ids = {}
    specs = [("ridge-a", {"model": "ridge", "lr": 0.1}, {"rmse": 3.5, "mae": 2.0}, {"team": "eta"}),
             ("ridge-b", {"model": "ridge", "lr": 0.01}, {"rmse": 4.5, "mae": 3.0}, {"team": "maps"}),
             ("forest", {"model": "forest", "lr": 0.1}, {"rmse": 2.5, "mae": 1.5}, {"team": "eta"}),
             ("broken", {"model": "mlp", "lr": 1.0}, {"rmse": math.nan}, {"team": "Maps-2"})]
    for name, params, metrics, tags in specs:
        with client.start_run("search", name=name, params=params, tags=tags) as run:
            run.log_metrics(metrics)
        ids[name] = run.run_id
    return ids


def names(frame) -> list[str]:  # type: ignore[no-untyped-def]
    return frame["name"].tolist()


@pytest.mark.parametrize(("query", "expected"), [
    ("metrics.rmse < 4", {"ridge-a", "forest"}),
    ("metrics.rmse < 4 and params.lr = 0.1", {"ridge-a", "forest"}),
    ("params.model = 'ridge' or metrics.mae <= 1.5", {"ridge-a", "ridge-b", "forest"}),
    ("not params.model = 'ridge'", {"forest", "broken"}),
    ("params.model IN ('forest', 'mlp')", {"forest", "broken"}),
    ("params.model NOT IN ('forest', 'mlp')", {"ridge-a", "ridge-b"}),
    ("tags.team LIKE 'ma%'", {"ridge-b"}),
    ("tags.team ILIKE 'ma%'", {"ridge-b", "broken"}),
    ("(tags.team = 'eta' and metrics.rmse > 3) or name = 'broken'", {"ridge-a", "broken"}),
    ("params.lr >= 0.1 and params.lr < 1", {"ridge-a", "forest"}),
    ("status = 'finished'", {"ridge-a", "ridge-b", "forest", "broken"}),
    ("attributes.run_name LIKE 'ridge%'", {"ridge-a", "ridge-b"}),
])
def test_filters(client: TrackingClient, populated: dict[str, str], query: str, expected: set[str]) -> None:
    assert set(names(client.search_runs("search", filter=query))) == expected


def test_order_limit_and_columns(client: TrackingClient, populated: dict[str, str]) -> None:
    frame = client.search_runs("search", order_by="metrics.rmse", limit=3)
    assert names(frame) == ["forest", "ridge-a", "ridge-b"]
    frame = client.search_runs("search", order_by=["params.lr DESC", "metrics.rmse ASC"])
    assert names(frame)[:3] == ["broken", "forest", "ridge-a"]
    full = client.search_runs("search")
    assert {"params.lr", "params.model", "metrics.rmse", "metrics.mae", "tags.team"} <= set(full.columns)
    assert full.loc[full["name"] == "broken", "metrics.rmse"].isna().all()
    assert str(full["start_time"].dt.tz) == "UTC"


def test_best_run_and_compare(client: TrackingClient, populated: dict[str, str]) -> None:
    assert client.best_run("search", "rmse").name == "forest"
    assert client.best_run("search", "rmse", mode="max").name == "ridge-b"
    with pytest.raises(NotFoundError, match="metric 'f1'"):
        client.best_run("search", "f1")
    result = client.compare_runs([populated["ridge-a"], populated["forest"]])
    assert bool(result.params.loc["model", "differs"]) is True
    assert bool(result.params.loc["lr", "differs"]) is False
    assert result.metrics.loc["rmse"].iloc[1] == 2.5


def test_syntax_errors_point_at_the_position(client: TrackingClient, populated: dict[str, str]) -> None:
    with pytest.raises(InvalidInputError, match=r"position 15") as info:
        client.search_runs("search", filter="metrics.rmse < and")
    assert "^" in info.value.message
    with pytest.raises(InvalidInputError, match="unknown prefix 'metricz'"):
        client.search_runs("search", filter="metricz.rmse < 3")
    with pytest.raises(InvalidInputError, match="metrics compared with numbers"):
        client.search_runs("search", filter="metrics.rmse = 'low'")
    with pytest.raises(InvalidInputError, match="order_by"):
        client.search_runs("search", order_by="metrics.rmse sideways")


def test_deleted_runs_are_hidden_until_restored(client: TrackingClient, populated: dict[str, str]) -> None:
    client.delete_run(populated["forest"])
    assert "forest" not in names(client.search_runs("search"))
    client.restore_run(populated["forest"])
    assert "forest" in names(client.search_runs("search"))


def test_a_long_param_that_does_not_compress_is_stored_and_found(client: TrackingClient) -> None:
    """6,000 random characters: past the 2,704-byte row limit of a PostgreSQL btree, which refused the insert."""
    import secrets

    value = secrets.token_hex(3000)
    with client.start_run("long-params") as run:
        run.log_param("blob", value)
    with client.start_run("long-params") as other:
        other.log_param("blob", "short")
    found = client.search_runs("long-params", filter=f"params.blob = '{value}'")
    assert list(found["run_id"]) == [run.run_id]
    assert client.get_run(run.run_id).params["blob"] == value


def test_a_limited_search_over_many_runs_fills_every_row(client: TrackingClient) -> None:
    # more runs than one IN list holds: the runs' params, metrics and tags come by the search's own query
    exp = client.get_or_create_experiment("many").experiment_id
    rows = []
    for i in range(620):
        run = client.repo.create_run(exp, f"r{i}", "u", {"batch": str(i % 3)}, None, "")
        client.repo.log_params(run.run_id, {"i": i, "kind": "even" if i % 2 == 0 else "odd"})
        rows.append((run.run_id, "score", i / 1000, 0, 1_700_000_000_000))
    client.repo.log_metrics(rows)
    frame = client.search_runs("many", order_by="metrics.score DESC", limit=555)
    assert len(frame) == 555 and frame["params.i"].tolist() == list(range(619, 64, -1))
    assert frame["metrics.score"].tolist() == [i / 1000 for i in range(619, 64, -1)]
    assert frame["params.kind"].notna().all() and frame["tags.batch"].notna().all()
    assert len(client.search_runs("many", filter="params.kind = 'even'")) == 310
