#!/usr/bin/env bash
# Runs the service the way the Dockerfile and compose.yaml do, without Docker: build the wheel,
# install it with the pinned constraints into a fresh virtualenv, start Redis (compose's redis
# service) and `ketamine-screen serve` with the app service's environment from compose.yaml, as
# the numeric user 10001:10001, then check:
#   - the numeric user: the serving process runs as uid/gid 10001 (when this script runs as root;
#     otherwise it says it could not switch user);
#   - /healthz, /readyz (Redis reachable), /metrics on the metrics port only;
#   - the drain: a request in flight when SIGTERM arrives is answered, then the server exits 0.
# The FHIR server (compose's hapi) is a stand-in that holds its answer (scripts/held_fhir.py).
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

.venv/bin/pip wheel --quiet --no-deps --wheel-dir "$work/dist" .
# The interpreter the project's .venv was made with (the Dockerfile pins the same version),
# unless user 10001 cannot run it (one under /root): then the system's.
base=$(.venv/bin/python -c 'import sys; print(sys._base_executable)')
if [ "$(id -u)" = 0 ]; then
  mine=$("$base" -c 'import sys; print(sys.version)')
  theirs=$(setpriv --reuid=10001 --regid=10001 --clear-groups "$base" -c 'import sys; print(sys.version)' 2>/dev/null || true)
  [ "$mine" = "$theirs" ] || base=/usr/bin/python3
fi
echo "python for the wheel: $base ($("$base" --version))"
"$base" -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet -c constraints.txt "$work"/dist/*.whl
chmod 755 "$work"
mkdir -p "$work/gate" && chmod 777 "$work/gate"

port=$(free_port); metrics=$(free_port); redis_port=$(free_port); fhir_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
  >"$work/redis.log" 2>&1 &
pids+=($!)
python3 scripts/held_fhir.py "$fhir_port" "$work/gate" &
pids+=($!)

# compose.yaml's app environment, with compose's host names mapped to this machine's ports.
"$work/venv/bin/python" - "$work/app.env" <<PY
import sys, yaml
app = yaml.safe_load(open("compose.yaml"))["services"]["app"]
env = {str(k): str(v) for k, v in app["environment"].items()}
env["KETAMINE_REDIS_URL"] = "redis://127.0.0.1:$redis_port/0"
env["KETAMINE_ALLOWED_ISSUERS"] = "http://127.0.0.1:$fhir_port/fhir"
env["KETAMINE_METRICS_PORT"] = "$metrics"
env["KETAMINE_METRICS_HOST"] = "127.0.0.1"
env["KETAMINE_SHUTDOWN_GRACE_SECONDS"] = "20"
open(sys.argv[1], "w").write("".join(f"export {k}='{v}'\n" for k, v in env.items()))
user = app["user"]
assert user == "10001:10001", user
PY
# shellcheck disable=SC1091
. "$work/app.env"
serve=("$work/venv/bin/ketamine-screen" serve --host 127.0.0.1 --port "$port")
if [ "$(id -u)" = 0 ]; then
  serve=(setpriv --reuid=10001 --regid=10001 --clear-groups "${serve[@]}")
fi
(cd "$work" && exec "${serve[@]}") >"$work/serve.log" 2>&1 &
pid=$!
pids+=("$pid")

up=""
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then up=1; break; fi
  sleep 0.2
done
if [ -z "$up" ]; then
  echo "container-check: /healthz did not answer; log follows" >&2
  cat "$work/serve.log" >&2
  exit 1
fi

if [ "$(id -u)" = 0 ]; then
  uid=$(awk '/^Uid:/{print $2}' "/proc/$pid/status"); gid=$(awk '/^Gid:/{print $2}' "/proc/$pid/status")
  [ "$uid:$gid" = "10001:10001" ] || { echo "container-check: serving as $uid:$gid, not 10001:10001" >&2; exit 1; }
  echo "numeric user: the server runs as uid:gid $uid:$gid (compose user and Dockerfile USER 10001:10001)"
else
  echo "numeric user: not checked (this script runs as uid $(id -u), and only root can switch to 10001)"
fi
grep -q '^USER 10001:10001$' Dockerfile || { echo "container-check: Dockerfile USER is not 10001:10001" >&2; exit 1; }

ready=$(curl -fsS "http://127.0.0.1:$port/readyz")
echo "readyz: $ready"
case "$ready" in *'"store":"ok"'*) ;; *) echo "container-check: Redis not reachable" >&2; exit 1;; esac
curl -fsS "http://127.0.0.1:$metrics/metrics" | grep -E '^ketamine_http_requests_total' | head -3
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/metrics")
[ "$code" = 404 ] || { echo "container-check: /metrics answered $code on the public port" >&2; exit 1; }
"$work/venv/bin/ketamine-screen" demo | grep -c '^Verdict for ' | xargs -I{} echo "demo verdicts from the wheel: {}"

# The drain: a launch needs the FHIR server's SMART configuration, which the stand-in holds.
curl -s -o /dev/null -w '%{http_code}' --max-time 60 \
  "http://127.0.0.1:$port/launch?iss=http://127.0.0.1:$fhir_port/fhir&launch=drain-check" \
  >"$work/inflight.code" &
inflight=$!
for _ in $(seq 1 100); do [ -f "$work/gate/arrived" ] && break; sleep 0.1; done
[ -f "$work/gate/arrived" ] || { echo "container-check: the launch never reached the FHIR stand-in" >&2; cat "$work/serve.log" >&2; exit 1; }
kill -TERM "$pid"
sleep 1
kill -0 "$pid" 2>/dev/null || { echo "container-check: the server exited with a request in flight" >&2; exit 1; }
touch "$work/gate/release"
wait "$inflight" || true
answered=$(cat "$work/inflight.code")
status=0; wait "$pid" || status=$?
[ "$answered" = 302 ] || { echo "container-check: the request in flight got '$answered', not 302" >&2; cat "$work/serve.log" >&2; exit 1; }
# uvicorn shuts down, then re-raises the SIGTERM it caught: 143 (128 + 15) is a clean stop.
case "$status" in 0|143) ;; *) echo "container-check: the server exited $status after SIGTERM" >&2; cat "$work/serve.log" >&2; exit 1;; esac
grep -q '"Application shutdown complete."' "$work/serve.log" || { echo "container-check: no clean shutdown" >&2; exit 1; }
echo "drain: the request in flight at SIGTERM was answered $answered; shutdown complete, exit $status"
echo "log lines (JSON, from this run):"
grep -E '"logger": "(service.access|uvicorn.error)"' "$work/serve.log" | head -6
echo "container-check: wheel installed, served as compose runs it, numeric user, drain: ok"
