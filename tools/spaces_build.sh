#!/usr/bin/env bash
# Builds and starts the Space as Hugging Face's builder does, then calls its API:
#   1. a fresh venv (Python 3.12, as the front matter asks, where this machine has it);
#   2. in a still empty working directory, the builder's own pip command with README.md's sdk_version;
#   3. the repository's tracked files copied in (git archive: what a push sends, not what lies around);
#   4. python app.py with SYSTEM=spaces and SPACE_ID set, then /predict and /faces called through gradio_client,
#      and /v1/faces over plain HTTP.
# It also checks that the Space installed no torch and reports the venv's size.
#     bash tools/spaces_build.sh [WORK_DIR]        (default: a fresh temporary folder, removed at the end)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="${1:-}"
SERVER=""
if [ -z "$WORK" ]; then WORK="$(mktemp -d)"; OWN_WORK=1; else OWN_WORK=""; fi
cleanup() {
    if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
    if [ -n "$OWN_WORK" ]; then rm -rf "$WORK"; fi   # its ~700 MB venv is not left behind
}
trap cleanup EXIT
export GRADIO_TEMP_DIR="$WORK/gradio"   # the app's uploads and the client's downloads go with the rest
PORT="${SPACES_BUILD_PORT:-7871}"
SDK="$(sed -n 's/^sdk_version: *//p' "$ROOT/README.md" | head -1)"
PYTHON=python3
for candidate in python3.12 "$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python3 2>/dev/null | tail -1)"; do
    if [ -n "$candidate" ] && "$candidate" --version >/dev/null 2>&1; then PYTHON="$candidate"; break; fi
done
echo "spaces build: gradio $SDK, $("$PYTHON" --version), in $WORK"

rm -rf "$WORK/venv" "$WORK/app" && mkdir -p "$WORK/app"
"$PYTHON" -m venv "$WORK/venv"
PIP_PYTHON="$WORK/venv/bin/python"
cp "$ROOT/requirements.txt" "$WORK/requirements.txt"   # the builder mounts it at /tmp/requirements.txt
(cd "$WORK/app" && "$PIP_PYTHON" -m pip install -q --no-cache-dir -r "$WORK/requirements.txt" \
    "gradio[oauth,mcp]==$SDK" "uvicorn>=0.14.0" "websockets>=10.4" spaces) \
    2> >(grep -v "^WARNING: Location" >&2)   # this machine's pip configuration names local indexes that may be absent

TREE="$(cd "$ROOT" && git stash create)"   # tracked files as they are now (HEAD when nothing changed)
(cd "$ROOT" && git archive "${TREE:-HEAD}") | tar -x -C "$WORK/app"

if "$PIP_PYTHON" -c "import torch" 2>/dev/null; then
    echo "spaces build: FAILED: torch was installed, the Space should not need it"; exit 1
fi
echo "spaces build: venv $(du -sm "$WORK/venv" | cut -f1) MB, no torch"

cd "$WORK/app"
SYSTEM=spaces SPACE_ID=fer-model/spaces-build GRADIO_SERVER_PORT="$PORT" GRADIO_ANALYTICS_ENABLED=False \
    HF_HUB_OFFLINE=1 "$PIP_PYTHON" app.py > "$WORK/app.log" 2>&1 &
SERVER=$!
"$PIP_PYTHON" - "$PORT" "$WORK/app.log" <<'PY'
import json, sys, time, urllib.request
from gradio_client import Client, handle_file

port, log = sys.argv[1], sys.argv[2]
url = f"http://127.0.0.1:{port}/"
for _ in range(240):
    try:
        urllib.request.urlopen(url, timeout=2)
        break
    except OSError:
        time.sleep(0.5)
else:
    sys.exit("spaces build: FAILED: the app did not start\n" + open(log).read()[-3000:])
client = Client(url, verbose=False)
label = client.predict(handle_file("web/examples/astronaut.jpg"), api_name="/predict")
faces = client.predict(handle_file("web/examples/astronaut.jpg"), api_name="/faces")
none = client.predict(handle_file("web/examples/chelsea.jpg"), api_name="/faces")
assert label["label"] == faces["faces"][0]["label"], (label, faces)
assert faces["count"] == 1 and none["count"] == 0, (faces, none)
request = urllib.request.Request(f"{url}v1/faces", data=open("web/examples/astronaut.jpg", "rb").read(),
                                 headers={"Content-Type": "image/jpeg"})
assert json.load(urllib.request.urlopen(request, timeout=60)) == faces, "/v1/faces differs from /faces"
print(f"spaces build: OK: /predict says {label['label']}, /faces and /v1/faces found {faces['count']} face "
      f"{json.dumps(faces['faces'][0]['box'])} and none on the cat")
PY
