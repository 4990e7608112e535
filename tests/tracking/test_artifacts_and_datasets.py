"""Artifacts (files, folders, text, dicts, figures) and dataset inputs."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mloop.errors import InvalidInputError, NotFoundError
from mloop.tracking import TrackingClient


def test_files_folders_text_and_dicts_round_trip(client: TrackingClient, tmp_path: Path) -> None:
    data = tmp_path / "model.bin"
    data.write_bytes(b"\x00\x01" * 5000)
    folder = tmp_path / "report"
    (folder / "img").mkdir(parents=True)
    (folder / "index.html").write_text("<h1>hi</h1>")
    (folder / "img" / "a.png").write_bytes(b"png")
    with client.start_run("eta") as run:
        one = run.log_artifact(data)
        run.log_artifact(folder, "report")
        run.log_text("hello", "notes/hello.txt")
        run.log_dict({"a": 1}, "cfg/config.json")
        run.log_dict({"b": [1, 2]}, "cfg/config.yaml")
    assert one.size == 10_000 and one.sha256 == hashlib.sha256(data.read_bytes()).hexdigest()
    paths = [a.path for a in client.repo.list_artifacts(run.run_id)]
    assert paths == ["cfg/config.json", "cfg/config.yaml", "model.bin", "notes/hello.txt", "report/img/a.png",
                     "report/index.html"]
    out = client.download_artifacts(run.run_id, "cfg/config.json", tmp_path / "got.json")
    assert json.loads(out.read_text()) == {"a": 1}
    client.download_artifacts(run.run_id, "report", tmp_path / "dl")
    assert (tmp_path / "dl" / "report" / "img" / "a.png").read_bytes() == b"png"


def test_delete_really_deletes_the_bytes(client: TrackingClient, tmp_path: Path) -> None:
    with client.start_run("eta") as run:
        run.log_text("secret", "s/secret.txt")
        run.log_text("keep", "keep.txt")
    assert client.repo.delete_artifact(run.run_id, "s") == 1
    assert [a.path for a in client.repo.list_artifacts(run.run_id)] == ["keep.txt"]
    if client.settings.remote:
        return  # the server's artifact root is not ours to inspect
    root = Path(client.settings.artifact_root)
    leftovers = [p.name for p in root.rglob("*") if p.is_file()]
    assert "secret.txt" not in leftovers and "keep.txt" in leftovers


def test_artifact_paths_are_validated(client: TrackingClient, tmp_path: Path) -> None:
    with client.start_run("eta") as run:
        for bad in ("../escape.txt", "/abs.txt", "a//b.txt", ""):
            with pytest.raises(InvalidInputError, match="artifact_path|path"):
                run.log_text("x", bad)
        with pytest.raises(InvalidInputError, match="local_path"):
            run.log_artifact(tmp_path / "missing.bin")
    with pytest.raises(NotFoundError):
        client.download_artifacts(run.run_id, "nothing.txt", tmp_path / "x")


def test_figures(client: TrackingClient, tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import plotly.graph_objects as go

    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    with client.start_run("eta") as run:
        png = run.log_figure(fig, "plots/loss.png")
        html = run.log_figure(go.Figure(go.Scatter(y=[1, 3, 2])), "plots/loss.html")
    plt.close(fig)
    assert png.size > 1000 and html.size > 100
    # the Plotly page carries its script: it opens on a machine without internet
    page = client.download_artifacts(run.run_id, "plots/loss.html", tmp_path / "loss.html").read_text()
    from plotly.offline import get_plotlyjs

    assert get_plotlyjs() in page and "Plotly.newPlot" in page
    assert not re.search(r"""src=["']?https?:""", page.replace(get_plotlyjs(), ""))


def test_the_same_dataset_logged_twice_is_one_dataset(client: TrackingClient, tmp_path: Path) -> None:
    frame = pd.DataFrame({"zone": np.arange(100), "fare": np.linspace(1, 2, 100)})
    with client.start_run("eta") as first:
        a = first.log_input(frame, name="trips", context="train")
        first.log_input(frame.copy(), name="trips", context="train")
    with client.start_run("eta") as second:
        b = second.log_input(frame.copy(), name="trips", context="train")
        other = second.log_input(frame.iloc[:50], name="trips", context="validation")
    assert a.dataset_id == b.dataset_id and a.digest == b.digest
    assert other.digest != a.digest and other.rows == 50
    assert a.rows == 100 and a.schema == {"zone": "int64", "fare": "float64"}
    assert len(client.repo.list_inputs(first.run_id)) == 1
    assert sorted(client.repo.runs_with_dataset(a.digest)) == sorted([first.run_id, second.run_id])


def test_parquet_path_dataset(client: TrackingClient, tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    pd.DataFrame({"x": [1.0, 2.0, 3.0]}).to_parquet(path)
    with client.start_run("eta") as run:
        ds = run.log_input(path, name="file-data")
    assert ds.rows == 3 and ds.schema == {"x": "double"} and ds.source.startswith("file://")
    with client.start_run("eta") as run, pytest.raises(InvalidInputError, match="data"):
        run.log_input(tmp_path / "nope.parquet")
