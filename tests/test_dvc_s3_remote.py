"""A DVC remote over the S3 protocol: moto's S3 server on a free loopback port stands in for the
cloud bucket; a small DVC project (one `dvc add`ed file, one stage) pushes to it through dvc[s3],
a fresh `git clone` pulls it back and `dvc status` reports it up to date. Needs the `scale` extra
(`pip install -e '.[scale]'`; .ci/run installs it)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

boto3 = pytest.importorskip("boto3")
pytest.importorskip("moto")
pytest.importorskip("dvc_s3")

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
BUCKET = "thinkrec-remote"
STAGE = "python -c \"from pathlib import Path; Path('out').mkdir(exist_ok=True); " \
        "Path('out/upper.txt').write_text(Path('data/ratings.csv').read_text().upper())\""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def s3_endpoint():
    """An S3-compatible server (moto_server) on 127.0.0.1 with one empty bucket; stopped after."""
    port = _free_port()
    server = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not answer on {url}")
                time.sleep(0.3)
        client = boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        client.create_bucket(Bucket=BUCKET)
        yield url, client
    finally:
        server.terminate()
        server.wait(timeout=30)


def _run(args: list[str], cwd: Path) -> str:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "DVC_NO_ANALYTICS": "1", "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{' '.join(args)}:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def test_push_fresh_clone_pull_is_up_to_date(tmp_path, s3_endpoint):
    url, client = s3_endpoint
    origin = tmp_path / "origin"
    origin.mkdir()
    dvc = str(BIN / "dvc")
    _run(["git", "init", "-q", "-b", "main"], origin)
    _run([dvc, "init", "-q"], origin)
    (origin / "data").mkdir()
    ratings = "user,item,rating\n" + "".join(f"{u},{i},{(u * i) % 5 + 1}\n" for u in range(40) for i in range(25))
    (origin / "data/ratings.csv").write_text(ratings)
    _run([dvc, "add", "-q", "data/ratings.csv"], origin)
    _run([dvc, "stage", "add", "-q", "-n", "upper", "-d", "data/ratings.csv", "-o", "out", STAGE], origin)
    _run([dvc, "repro", "-q"], origin)
    _run([dvc, "remote", "add", "-d", "store", f"s3://{BUCKET}/cache"], origin)
    _run([dvc, "remote", "modify", "store", "endpointurl", url], origin)
    _run(["git", "add", "-A"], origin)
    _run(["git", "commit", "-q", "-m", "data and a stage"], origin)
    _run([dvc, "push"], origin)
    stored = [o["Key"] for o in client.list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert len(stored) >= 3 and all(k.startswith("cache/files/md5/") for k in stored)  # file, dir manifest, out file

    clone = tmp_path / "clone"
    _run(["git", "clone", "-q", str(origin), str(clone)], tmp_path)
    assert not (clone / "data/ratings.csv").exists() and not (clone / "out").exists()
    _run([dvc, "pull"], clone)
    assert (clone / "data/ratings.csv").read_text() == ratings
    assert (clone / "out/upper.txt").read_text() == ratings.upper()
    assert "Data and pipelines are up to date" in _run([dvc, "status"], clone)
    assert "Cache and remote 'store' are in sync" in _run([dvc, "status", "--cloud"], clone)
