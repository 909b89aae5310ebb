#!/usr/bin/env bash
# Cluster smoke test (README "Running on a cluster"), with real processes on 127.0.0.1 only:
#   a PostgreSQL 15 server (as the `postgres` user: it refuses to run as root) in a temporary folder,
#   an MLflow tracking server on it that serves the artifacts itself (--artifacts-destination),
#   a privrec sweep through Hydra's submitit launcher (hydra/launcher=submitit_local) into that server,
#   then `privrec report` and `privrec reproduce` against it.
# Both servers are stopped and the folder removed on exit, whatever happens (trap EXIT).
#
# Needs: privrec installed with the `cluster` extra, PRIVREC_DATA_DIR with ml-100k, PostgreSQL 15 binaries
# (PG_BIN, default: the folder of the `pg_ctl` on PATH, else /usr/lib/postgresql/15/bin). Run as root (it
# switches to the postgres user for PostgreSQL) or as the user that owns PostgreSQL.
set -euo pipefail

PYTHON="${PYTHON:-python}"
if [[ -z "${PG_BIN:-}" ]]; then
    if command -v pg_ctl >/dev/null; then PG_BIN="$(dirname "$(readlink -f "$(command -v pg_ctl)")")"; fi
    if [[ -z "${PG_BIN:-}" || ! -x "$PG_BIN/initdb" ]]; then PG_BIN=/usr/lib/postgresql/15/bin; fi
fi
for tool in initdb pg_ctl createdb pg_isready; do
    [[ -x "$PG_BIN/$tool" ]] || { echo "cluster_smoke: $PG_BIN/$tool is missing (set PG_BIN)" >&2; exit 1; }
done
as_pg() {  # run a PostgreSQL tool as the postgres user when we are root
    if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}
free_port() { "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/privrec-cluster.XXXXXX")"
chmod 755 "$WORK"
PGDATA="$WORK/pg"
mkdir "$PGDATA"
[[ "$(id -u)" == 0 ]] && chown postgres: "$PGDATA"
MLFLOW_PID=""

cleanup() {
    local code=$?
    if [[ -n "$MLFLOW_PID" ]]; then  # the server and its workers: one process group (setsid below)
        kill -TERM -- "-$MLFLOW_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 -- "-$MLFLOW_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL -- "-$MLFLOW_PID" 2>/dev/null || true
    fi
    if [[ -f "$PGDATA/postmaster.pid" ]]; then
        as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    if [[ $code != 0 ]]; then
        for log in "$WORK/postgres.log" "$WORK/mlflow.log"; do
            [[ -f "$log" ]] && { echo "--- last lines of $log" >&2; tail -n 30 "$log" >&2; }
        done
    fi
    rm -rf "$WORK"
    exit $code
}
trap cleanup EXIT

PG_PORT="$(free_port)"
as_pg "$PG_BIN/initdb" -D "$PGDATA" -U postgres -A trust --no-sync >/dev/null
as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/postgres.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PGDATA -c fsync=off" start >/dev/null
as_pg "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres mlflow
echo "cluster_smoke: PostgreSQL on 127.0.0.1:$PG_PORT"

MLFLOW_PORT="$(free_port)"
export MLFLOW_DISABLE_TELEMETRY=true
mkdir "$WORK/artifacts"
setsid "$PYTHON" -m mlflow server --backend-store-uri "postgresql+psycopg://postgres@127.0.0.1:$PG_PORT/mlflow" \
    --artifacts-destination "$WORK/artifacts" --host 127.0.0.1 --port "$MLFLOW_PORT" --workers 1 \
    >"$WORK/mlflow.log" 2>&1 &
MLFLOW_PID=$!
export MLFLOW_TRACKING_URI="http://127.0.0.1:$MLFLOW_PORT"
for _ in $(seq 240); do
    "$PYTHON" -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1] + '/health', timeout=2)" \
        "$MLFLOW_TRACKING_URI" 2>/dev/null && break
    kill -0 "$MLFLOW_PID" 2>/dev/null || { echo "cluster_smoke: the MLflow server exited" >&2; exit 1; }
    sleep 0.5
done
"$PYTHON" -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1] + '/health', timeout=2)" \
    "$MLFLOW_TRACKING_URI"
echo "cluster_smoke: MLflow server on $MLFLOW_TRACKING_URI (artifacts served from $WORK/artifacts)"

cd "$WORK"
privrec run -m hydra/launcher=submitit_local attack=none privacy.rate=0,0.5 \
    hydra.sweep.dir="$WORK/sweep" hydra.sweeper.max_batch_size=2
privrec report --out "$WORK/report" --group none
[[ -f "$WORK/report/frontier.png" ]] || ls "$WORK/report"
RUN_ID="$("$PYTHON" - <<'PY'
import mlflow

client = mlflow.MlflowClient()
exp = client.get_experiment_by_name("privrec")
runs = client.search_runs([exp.experiment_id], filter_string="tags.`mlflow.parentRunId` != ''",
                          order_by=["attributes.start_time ASC"])
assert len(runs) == 2 and all(r.info.status == "FINISHED" for r in runs), [r.info.status for r in runs]
parents = {r.data.tags["mlflow.parentRunId"] for r in runs}
assert len(parents) == 1, parents
parent = client.get_run(parents.pop())
assert parent.info.status == "FINISHED", parent.info.status
# artifacts went through the server (mlflow-artifacts:), into --artifacts-destination
assert runs[0].info.artifact_uri.startswith("mlflow-artifacts:"), runs[0].info.artifact_uri
assert client.list_artifacts(runs[0].info.run_id), "no artifacts"
print(runs[0].info.run_id)
PY
)"
find "$WORK/artifacts" -type f | grep -q . || { echo "cluster_smoke: no artifact under $WORK/artifacts" >&2; exit 1; }
privrec reproduce "$RUN_ID"
echo "cluster_smoke: OK (sweep via submitit_local into MLflow on PostgreSQL; report and reproduce)"
