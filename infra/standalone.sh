#!/usr/bin/env bash
# A Spark standalone cluster (one master + one worker) on 127.0.0.1 from the pip pyspark's
# spark-class: the smallest real cluster, for the scale-out test and for trying the DAGs on a
# cluster (`airflow connections add dmp_spark --conn-type spark --conn-host spark://127.0.0.1:PORT`).
#
#   infra/standalone.sh start [STATE_DIR]   # prints MASTER=spark://127.0.0.1:PORT, waits for the worker
#   infra/standalone.sh status [STATE_DIR]
#   infra/standalone.sh stop [STATE_DIR]    # stops exactly the processes it started
#
# Knobs: DMP_WORKER_CORES (1), DMP_WORKER_MEMORY (1g), PYTHON (.venv/bin/python).
set -euo pipefail

cmd="${1:-}"
state="${2:-${DMP_STANDALONE_DIR:-/tmp/dmp-standalone}}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-$here/.venv/bin/python}"

spark_home() {
  "$python" -c 'from dmp.contracts.packages import spark_home; print(spark_home())'
}

free_port() {
  "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

alive_workers() {
  # The master's web UI serves its state as JSON.
  curl -fsS "http://127.0.0.1:$(cat "$state/ui_port")/json/" 2>/dev/null |
    "$python" -c 'import json,sys; print(json.load(sys.stdin).get("aliveworkers", 0))' 2>/dev/null || echo 0
}

start() {
  if [[ -f "$state/master.pid" ]] && kill -0 "$(cat "$state/master.pid")" 2>/dev/null; then
    echo "MASTER=$(cat "$state/master_url")"
    return 0
  fi
  mkdir -p "$state/logs" "$state/work"
  local home port ui wui
  home="$(spark_home)"
  port="$(free_port)"; ui="$(free_port)"; wui="$(free_port)"
  export SPARK_HOME="$home" SPARK_LOCAL_IP=127.0.0.1 SPARK_MASTER_HOST=127.0.0.1 SPARK_NO_DAEMONIZE=1
  export PYSPARK_PYTHON="$python"
  echo "$ui" >"$state/ui_port"
  echo "spark://127.0.0.1:$port" >"$state/master_url"
  # setsid: each daemon leads its own process group, so stop can end it (and its JVM) exactly.
  setsid "$home/bin/spark-class" org.apache.spark.deploy.master.Master \
    --host 127.0.0.1 --port "$port" --webui-port "$ui" >"$state/logs/master.log" 2>&1 &
  echo $! >"$state/master.pid"
  setsid "$home/bin/spark-class" org.apache.spark.deploy.worker.Worker "spark://127.0.0.1:$port" \
    --host 127.0.0.1 --cores "${DMP_WORKER_CORES:-1}" --memory "${DMP_WORKER_MEMORY:-1g}" \
    --webui-port "$wui" --work-dir "$state/work" >"$state/logs/worker.log" 2>&1 &
  echo $! >"$state/worker.pid"
  for _ in $(seq 1 120); do
    if [[ "$(alive_workers)" -ge 1 ]]; then
      echo "MASTER=spark://127.0.0.1:$port"
      echo "UI=http://127.0.0.1:$ui"
      return 0
    fi
    sleep 0.5
  done
  echo "standalone cluster did not come up; logs in $state/logs" >&2
  tail -n 20 "$state/logs/master.log" "$state/logs/worker.log" >&2 || true
  stop
  return 1
}

stop() {
  local name pid
  for name in worker master; do
    if [[ -f "$state/$name.pid" ]]; then
      pid="$(cat "$state/$name.pid")"
      kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      kill -9 -- "-$pid" 2>/dev/null || true
      rm -f "$state/$name.pid"
    fi
  done
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  status)
    if [[ -f "$state/master_url" ]]; then
      echo "MASTER=$(cat "$state/master_url") workers=$(alive_workers)"
    else
      echo "not running"
    fi
    ;;
  *)
    echo "usage: $0 start|stop|status [STATE_DIR]" >&2
    exit 2
    ;;
esac
