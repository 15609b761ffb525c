#!/usr/bin/env bash
# make demo: fresh demo data -> the three Airflow DAGs (airflow dags test, SQLite metadata DB,
# local Spark, local lake, file:// destinations) -> a summary of what they produced.
# Nothing needs to be running beforehand; nothing is left running afterwards.
#
# Knobs: DMP_DEMO_OUT (demo_out), DMP_DEMO_USERS (12000 ≈ 225k events over 24 days),
#        DMP_DEMO_DAYS (24), DMP_DEMO_SEED (42).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bin="$repo/.venv/bin"
out="$(mkdir -p "${DMP_DEMO_OUT:-demo_out}" && cd "${DMP_DEMO_OUT:-demo_out}" && pwd)"
users="${DMP_DEMO_USERS:-12000}"
days="${DMP_DEMO_DAYS:-24}"
seed="${DMP_DEMO_SEED:-42}"
began=$(date +%s)

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

# Fresh run: the previous demo's lake, deliveries and Airflow DB go away.
rm -rf "$out/landing" "$out/lakehouse" "$out/delivery" "$out/airflow" "$out/logs"
mkdir -p "$out/logs"

step "generate demo data: $users users x $days days (seed $seed)"
"$bin/dmp" generate --out "$out/landing" --users "$users" --days "$days" --seed "$seed" | tail -n 4
read -r start end run_date < <("$bin/python" - "$out/landing" <<'EOF'
import json, sys
from pathlib import Path
root = Path(sys.argv[1])
summary = json.loads((root / "truth" / "summary.json").read_text())
campaigns = json.loads((root / "truth" / "campaigns.json").read_text())
print(summary["start"], summary["end"], campaigns[0]["run_date"] if campaigns else summary["end"])
EOF
)
echo "history $start … $end; campaign run date $run_date"

# Airflow home with a SQLite metadata DB, the repo's dags/ folder, local Spark (no dmp_spark
# connection -> local[2]), the lake under demo_out/, deliveries to file://demo_out/delivery.
eval "$("$bin/dmp" airflow-env --home "$out/airflow" --lake "$out/lakehouse" --landing "$out/landing" \
  --segments "$repo/segments" --delivery-root "file://$out/delivery")"
export DMP_SHUFFLE_PARTITIONS="${DMP_SHUFFLE_PARTITIONS:-4}"

step "airflow db migrate ($AIRFLOW_HOME, SQLite)"
"$bin/airflow" db migrate >"$out/logs/airflow_db_migrate.log" 2>&1

run_dag() {
  local dag="$1" logical="$2" conf="$3" t0 rc
  t0=$(date +%s)
  step "airflow dags test $dag $logical -c '$conf'"
  set +e
  "$bin/airflow" dags test "$dag" "$logical" -c "$conf" >"$out/logs/$dag.log" 2>&1 &
  local airflow_pid=$!
  # Live: each task as it starts and ends, and the Spark steps' progress lines from the task logs.
  "$bin/python" -m dmp.demo.watch "$AIRFLOW_HOME/airflow.db" "$dag" "$out/logs/$dag.log" "$airflow_pid" &
  local watch_pid=$!
  wait "$airflow_pid"
  rc=$?
  wait "$watch_pid"
  set -e
  echo "   $dag finished in $(( $(date +%s) - t0 ))s (log: $out/logs/$dag.log)"
  if [[ $rc -ne 0 ]]; then
    echo "   $dag FAILED (exit $rc); last lines of its log:" >&2
    grep -E "error|Error|ERROR|Exception" "$out/logs/$dag.log" | tail -n 15 >&2 || true
    return $rc
  fi
}

# One dmp_daily run over the whole history (params date_from/date_to): one spark-submit per
# step instead of one per step per day. Scheduled runs process one day each.
run_dag dmp_daily "$end" "{\"date_from\": \"$start\", \"date_to\": \"$end\"}"
# Packs on the campaign run date, so the uplift step can evaluate the planted campaign.
run_dag dmp_audiences "$run_date" "{\"run_date\": \"$run_date\"}"
run_dag dmp_uplift "$end" "{\"as_of\": \"$end\"}"

step "summary"
"$bin/dmp" summary --lake "$out/lakehouse"

step "measured uplift against the generator's planted truth ($out/landing/truth/campaigns.json)"
"$bin/dmp" summary --lake "$out/lakehouse" --json >"$out/logs/summary.json"
"$bin/python" - "$out/landing/truth/campaigns.json" "$out/logs/summary.json" <<'EOF'
import json, sys
planted = {(c["segment"], c["run_date"]): c for c in json.load(open(sys.argv[1]))}
def pct(v):
    return "n/a" if v is None else f"{v * 100:+.2f} points"
for u in json.load(open(sys.argv[2]))["uplift"]:
    value, low, high = u.get("uplift_abs") or (None, None, None)
    truth = planted.get((u["segment"], u["run_date"]))
    true_uplift = truth["true_uplift_abs"] if truth else 0.0
    if value is None or low is None or high is None or true_uplift is None:
        where = "not comparable (no interval)"
    elif low <= true_uplift <= high:
        where = "inside the interval"
    else:
        where = "OUTSIDE the interval (a 95% interval misses the truth 1 time in 20)"
    planted_text = (f"planted {pct(true_uplift)} (realised in this sample {pct(truth['realised_uplift_abs'])})"
                    if truth else "nothing planted (true uplift 0)")
    print(f"   {u['segment']} {u['run_date']}: {planted_text}; measured {pct(value)} "
          f"[{pct(low)}, {pct(high)}]: the truth is {where}")
EOF
echo
echo "Airflow home: $AIRFLOW_HOME   DAG logs: $out/logs/   deliveries: $out/delivery/   reports: $out/lakehouse/reports/"
if [[ -f "$out/lakehouse/site/index.html" ]]; then
  echo "the marketers' site (open it in a browser): file://$out/lakehouse/site/index.html"
else
  echo "no site was published (see the publish_site task in $out/logs/dmp_audiences.log)" >&2
fi
echo "demo finished in $(( $(date +%s) - began ))s"
