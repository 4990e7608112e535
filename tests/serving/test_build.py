"""``mloop build``: the context's content, and its entrypoint serving the model in a local process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from mloop.errors import InvalidInputError
from mloop.serving import build_context
from tests.conftest import free_port
from tests.serving.conftest import MODEL, ROW, wait_ready


def test_context_pins_the_manifest_and_copies_the_version(registry, tmp_path) -> None:
    out = tmp_path / "ctx"
    result = subprocess.run([sys.executable, "-m", "mloop", "build", f"models:/{MODEL}@challenger", "-o", str(out),
                             "-r", "gunicorn==23.0.0"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == [".dockerignore", "Dockerfile", "entrypoint.sh", "model",
                                                     "requirements.txt"]
    manifest = yaml.safe_load((out / "model" / "mloop-model.yaml").read_text())
    requirements = (out / "requirements.txt").read_text().splitlines()
    for package, version in manifest["requirements"].items():
        assert f"{package}=={version}" in requirements
    assert requirements[-1] == "gunicorn==23.0.0"
    assert all("==" in r for r in requirements)
    dockerfile = (out / "Dockerfile").read_text()
    python = ".".join(manifest["python"].split(".")[:2])
    assert dockerfile.startswith(f"# Built by `mloop build models:/{MODEL}@challenger` (model {MODEL} version 2)")
    assert f"FROM python:{python}-slim" in dockerfile
    assert "pip install --no-cache-dir -r requirements.txt" in dockerfile and "COPY model /opt/model" in dockerfile
    assert 'ENTRYPOINT ["mloop-entrypoint"]' in dockerfile and "USER mloop" in dockerfile
    assert "python -m mloop serve" in (out / "entrypoint.sh").read_text()
    assert os.access(out / "entrypoint.sh", os.X_OK)
    with pytest.raises(InvalidInputError, match="empty or new folder"):
        build_context(f"models:/{MODEL}@challenger", out, client=registry)


def test_entrypoint_serves_the_model(model_dir, tmp_path) -> None:
    out = tmp_path / "ctx"
    build_context(str(model_dir), out)
    port = free_port()
    env = {**os.environ, "MLOOP_MODEL_DIR": str(out / "model"), "MLOOP_MODEL_NAME": "trips", "HOST": "127.0.0.1",
           "PORT": str(port), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    # extra arguments go on to `mloop serve`: here a second model served by name beside the first
    proc = subprocess.Popen(["sh", str(out / "entrypoint.sh"), f"twin={model_dir}", "--reload-seconds", "0"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc)
        first = httpx.post(url + "/predict/trips", json=[ROW]).json()
        twin = httpx.post(url + "/invocations", json={"dataframe_records": [ROW]}).json()
        assert first["model"] == "trips" and first["predictions"] == twin["predictions"]
        assert httpx.post(url + "/predict/twin", json=[ROW]).json()["predictions"] == first["predictions"]
    finally:
        proc.terminate()
        proc.wait(30)
