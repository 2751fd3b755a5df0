"""`fer-model batch --runner ray` on a two-node Ray cluster, started in a network namespace of its own (so
that every node registers as 127.0.0.1 and nothing leaves the machine), gives the rows a local run gives."""
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from .conftest import ROOT, subprocess_env
from .test_batch import two_face_clip

pytest.importorskip("ray")
pytest.importorskip("daft")

CLUSTER = """
set -e
bin=$1; shift  # the interpreter's own bin/, where ray and python are: PATH may not hold them
ray() { "$bin/ray" "$@"; }
python() { "$bin/python" "$@"; }
ip link set lo up
export RAY_AUTH_MODE=disabled RAY_USAGE_STATS_ENABLED=0
trap 'ray stop --force >/dev/null 2>&1' EXIT
ray start --head --node-ip-address=127.0.0.1 --port=6390 --num-cpus=1 --include-dashboard=false >/dev/null
ray start --address=127.0.0.1:6390 --node-ip-address=127.0.0.1 --num-cpus=1 >/dev/null
python -c "import ray; ray.init('127.0.0.1:6390', log_to_driver=False); \\
print('nodes', sum(n['Alive'] for n in ray.nodes()), sorted({n['NodeManagerAddress'] for n in ray.nodes()}))"
python -m fer_model.cli batch "$@" --runner ray --address 127.0.0.1:6390
"""


def can_unshare() -> bool:
    return shutil.which("unshare") is not None and shutil.which("ip") is not None and subprocess.run(
        ["unshare", "-n", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not can_unshare(), reason="needs unshare -n (root) to keep the cluster off the network")
def test_two_node_ray_cluster_gives_the_local_rows(tmp_path, astronaut):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(12):
        astronaut.resize((200 + 8 * i, 200 + 8 * i)).save(photos / f"{i}.jpg")
    clip = two_face_clip(tmp_path / "clip.avi", astronaut, frames=30)
    args = [str(photos), str(clip), "--segment-seconds", "1", "--smoothing", "0.4"]
    env = {**subprocess_env(), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}  # no venv on PATH, as when it is not activated
    cluster = subprocess.run(["unshare", "-n", "bash", "-c", CLUSTER, "cluster", str(Path(sys.executable).parent), *args,
                              "--out", str(tmp_path / "ray")], env=env, cwd=ROOT, capture_output=True, text=True,
                             timeout=400)
    assert cluster.returncode == 0, cluster.stderr[-3000:]
    assert "nodes 2 ['127.0.0.1']" in cluster.stdout
    local = subprocess.run([sys.executable, "-m", "fer_model.cli", "batch", *args, "--out", str(tmp_path / "local")],
                           env=subprocess_env(), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert local.returncode == 0, local.stderr[-2000:]
    order = ["source", "frame", "face"]
    on_ray = pq.read_table(tmp_path / "ray" / "faces").to_pandas().sort_values(order).reset_index(drop=True)
    here = pq.read_table(tmp_path / "local" / "faces").to_pandas().sort_values(order).reset_index(drop=True)
    assert len(on_ray) == len(here) == 12 + len(here[here.source == str(clip)]) and len(here) > 12 + 30
    assert on_ray.equals(here)  # track ids too: the second face is a new track after it was gone 9 frames
    assert here.track_id.nunique() == 3
