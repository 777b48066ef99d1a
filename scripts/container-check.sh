#!/usr/bin/env bash
# Installs the service the way the Dockerfile does (build the wheel, install it with the pinned
# constraints into a fresh virtualenv, start `ketamine-screen serve`) and checks /healthz.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'kill "${pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
.venv/bin/pip wheel --quiet --no-deps --wheel-dir "$work/dist" .
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet -c constraints.txt "$work"/dist/*.whl
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$work" && exec "$work/venv/bin/ketamine-screen" serve --host 127.0.0.1 --port "$port") \
  >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 60); do
  if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
    curl -fsS "http://127.0.0.1:$port/readyz"; echo
    "$work/venv/bin/ketamine-screen" demo | grep -c '^Verdict for ' | xargs -I{} echo "demo verdicts from the wheel: {}"
    echo "container-check: wheel installed and /healthz answered on port $port"
    exit 0
  fi
  sleep 0.5
done
echo "container-check: /healthz did not answer; log follows" >&2
cat "$work/serve.log" >&2
exit 1
