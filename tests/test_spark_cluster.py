"""`spark-match` on a real Spark standalone cluster: a master and one worker started on
localhost from pyspark's own launcher (``bin/spark-class``), the job submitted to
``spark://127.0.0.1:PORT`` as a user would, its matches equal to local mode's."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import require
from tests.e2e.app_server import free_port
from tests.test_spark import _spark_cli, best_model, read_pairs, shopee_sample  # noqa: F401

pytestmark = pytest.mark.slow


def spark_class() -> Path:
    require(importlib.util.find_spec("pyspark") is not None, "pyspark is not installed")
    require(shutil.which("java") is not None or "JAVA_HOME" in os.environ, "no Java")
    import pyspark

    launcher = Path(pyspark.__file__).parent / "bin" / "spark-class"
    require(launcher.is_file(), f"pyspark ships no {launcher}")
    return launcher


def alive_workers(ui_port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=5) as reply:
            state = json.load(reply)
    except OSError:
        return 0
    return sum(worker.get("state") == "ALIVE" for worker in state.get("workers", []))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """(spark://127.0.0.1:PORT, the master's web UI port) with one worker of 2 cores; both
    stopped afterwards."""
    launcher = spark_class()
    folder = tmp_path_factory.mktemp("spark-cluster")
    port, ui, worker_ui = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "SPARK_HOME": str(launcher.parents[1]),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOG_DIR": str(folder / "logs"),
        "SPARK_WORKER_DIR": str(folder / "work"),
    }
    logs = [(folder / name).open("w") for name in ("master.log", "worker.log")]
    master = subprocess.Popen(
        [str(launcher), "org.apache.spark.deploy.master.Master"]
        + ["--host", "127.0.0.1", "--port", str(port), "--webui-port", str(ui)],
        env=env,
        stdout=logs[0],
        stderr=subprocess.STDOUT,
    )
    url = f"spark://127.0.0.1:{port}"
    worker = subprocess.Popen(
        [str(launcher), "org.apache.spark.deploy.worker.Worker", url]
        + ["--host", "127.0.0.1", "--cores", "2", "--memory", "2g"]
        + ["--webui-port", str(worker_ui), "--work-dir", str(folder / "work")],
        env=env,
        stdout=logs[1],
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while alive_workers(ui) < 1:
            if master.poll() is not None or worker.poll() is not None:
                log = (folder / "master.log").read_text()[-2000:]
                pytest.fail(f"the Spark master or worker exited: {log}")
            if time.monotonic() > deadline:
                pytest.fail("no Spark worker registered within 2 minutes")
            time.sleep(1)
        yield url, ui
    finally:
        for process in (worker, master):
            process.terminate()
        for process in (worker, master):
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in logs:
            log.close()


def spark_match(*args: object) -> subprocess.CompletedProcess:
    # Executors run this interpreter (PYSPARK_PYTHON), which has the job's dependencies.
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
    return _spark_cli(*args, env=env, timeout=600)


@pytest.mark.parametrize("pipeline", ["baseline", "ensemble", "best"])
def test_a_standalone_cluster_matches_as_local_mode(
    cluster, demo_catalog, tmp_path, pipeline, request
):
    common = ["--catalog", demo_catalog, "--pipeline", pipeline, "--hash-only"]
    if pipeline == "best":  # a model trained on real Shopee postings (tests/test_spark.py)
        common += ["--model", request.getfixturevalue("best_model")]
    url = cluster[0]
    on_cluster = spark_match(*common, "--master", url, "--out", tmp_path / "cluster.csv")
    assert on_cluster.returncode == 0, on_cluster.stderr[-3000:]
    local = spark_match(*common, "--master", "local[2]", "--out", tmp_path / "local.csv")
    assert local.returncode == 0, local.stderr[-3000:]
    # The job ran on the cluster: the master lists it as a completed application.
    state = json.load(urllib.request.urlopen(f"http://127.0.0.1:{cluster[1]}/json/", timeout=5))
    assert any(app.get("name") == "samesame" for app in state.get("completedapps", []))
    ids, pairs = read_pairs(tmp_path / "cluster.csv")
    assert (ids, pairs) == read_pairs(tmp_path / "local.csv")
    assert len(pairs) > 100  # the demo's products are found, not an empty answer
