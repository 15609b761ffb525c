#!/usr/bin/env bash
# Local S3-compatible server (MinIO built from source) for tests and the demo.
#
#   bash infra/minio.sh build    # go install github.com/minio/minio@latest once (cached in ~/go/bin)
#   bash infra/minio.sh start    # 127.0.0.1:<free port>, throwaway data dir; prints env to export
#   bash infra/minio.sh stop     # stops the server started by `start` and removes its data dir
#
# Knobs: MINIO_BIN (default ~/go/bin/minio), DMP_MINIO_STATE (pid/data folder, default
# /tmp/dmp-minio-$USER), MINIO_PORT (default: a free port). Credentials are fixed TEST values
# (dmp-test / dmp-test-secret): this server is throwaway and bound to 127.0.0.1 only.
set -euo pipefail

MINIO_BIN="${MINIO_BIN:-$HOME/go/bin/minio}"
STATE="${DMP_MINIO_STATE:-/tmp/dmp-minio-${USER:-$(id -u)}}"
TEST_USER="dmp-test"
TEST_SECRET="dmp-test-secret"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

build() {
  if [[ -x "$MINIO_BIN" ]]; then
    echo "minio already built: $MINIO_BIN"
    return
  fi
  command -v go >/dev/null || { echo "go is not installed (needed to build MinIO from source)" >&2; exit 1; }
  echo "building MinIO from source (go install github.com/minio/minio@latest) ..."
  GOFLAGS="${GOFLAGS:-}" go install github.com/minio/minio@latest
  test -x "$MINIO_BIN" || { echo "build finished but $MINIO_BIN is missing (GOBIN set?)" >&2; exit 1; }
}

start() {
  build >/dev/null
  if [[ -f "$STATE/minio.pid" ]] && kill -0 "$(cat "$STATE/minio.pid")" 2>/dev/null; then
    cat "$STATE/env"
    return
  fi
  mkdir -p "$STATE"
  local port="${MINIO_PORT:-$(free_port)}" console
  console="$(free_port)"
  local data
  data="$(mktemp -d "$STATE/data.XXXXXX")"
  MINIO_ROOT_USER="$TEST_USER" MINIO_ROOT_PASSWORD="$TEST_SECRET" MINIO_BROWSER=off \
    nohup "$MINIO_BIN" server --quiet --address "127.0.0.1:$port" --console-address "127.0.0.1:$console" "$data" \
    >"$STATE/minio.log" 2>&1 &
  echo $! >"$STATE/minio.pid"
  echo "$data" >"$STATE/data_dir"
  for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$port/minio/health/live" >/dev/null 2>&1; then
      cat >"$STATE/env" <<EOF
export AWS_ENDPOINT_URL=http://127.0.0.1:$port
export AWS_ACCESS_KEY_ID=$TEST_USER
export AWS_SECRET_ACCESS_KEY=$TEST_SECRET
export AWS_DEFAULT_REGION=us-east-1
EOF
      cat "$STATE/env"
      return
    fi
    if ! kill -0 "$(cat "$STATE/minio.pid")" 2>/dev/null; then
      echo "minio exited during start; log:" >&2
      cat "$STATE/minio.log" >&2
      exit 1
    fi
    sleep 0.2
  done
  echo "minio did not become healthy on 127.0.0.1:$port within 20s; log in $STATE/minio.log" >&2
  stop
  exit 1
}

stop() {
  if [[ -f "$STATE/minio.pid" ]]; then
    local pid
    pid="$(cat "$STATE/minio.pid")"
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    rm -f "$STATE/minio.pid" "$STATE/env"
  fi
  if [[ -f "$STATE/data_dir" ]]; then
    rm -rf "$(cat "$STATE/data_dir")"
    rm -f "$STATE/data_dir"
  fi
  echo "minio stopped"
}

case "${1:-}" in
  build) build ;;
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 build|start|stop" >&2; exit 2 ;;
esac
