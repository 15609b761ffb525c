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
rm -rf "$out/landing" "$out/lakehouse" "$out/reports" "$out/delivery" "$out/airflow" "$out/logs"
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
  "$bin/airflow" dags test "$dag" "$logical" -c "$conf" >"$out/logs/$dag.log" 2>&1
  rc=$?
  set -e
  "$bin/python" - "$AIRFLOW_HOME/airflow.db" "$dag" <<'EOF'
import sqlite3, sys
db, dag = sys.argv[1], sys.argv[2]
rows = sqlite3.connect(db).execute(
    "SELECT task_id, map_index, rendered_map_index, state FROM task_instance "
    "WHERE dag_id = ? AND run_id = (SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1) "
    "ORDER BY id", (dag, dag)).fetchall()
for task_id, map_index, label, state in rows:
    name = task_id if map_index < 0 else f"{task_id}[{label or map_index}]"
    print(f"   {state or 'none':>15}  {name}")
EOF
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
planted = {c["segment"]: c for c in json.load(open(sys.argv[1]))}
measured = json.load(open(sys.argv[2]))["uplift"]
def pct(v):
    return f"{v * 100:+.2f} points"
for u in measured:
    value, low, high = u["uplift_abs"]
    truth = planted.get(u["segment"])
    if truth is None:
        where = "inside" if low <= 0 <= high else "OUTSIDE it (a 95% interval misses the truth 1 time in 20)"
        print(f"   {u['segment']}: nothing planted (true uplift 0); measured {pct(value)} "
              f"[{pct(low)}, {pct(high)}]: zero is {where}")
    else:
        where = "inside" if low <= truth["true_uplift_abs"] <= high else "OUTSIDE"
        print(f"   {u['segment']}: planted {pct(truth['true_uplift_abs'])} (realised in this sample "
              f"{pct(truth['realised_uplift_abs'])}); measured {pct(value)} [{pct(low)}, {pct(high)}]: "
              f"the planted effect is {where} the interval")
EOF
echo
echo "Airflow home: $AIRFLOW_HOME   DAG logs: $out/logs/   deliveries: $out/delivery/   reports: $out/reports/"
echo "demo finished in $(( $(date +%s) - began ))s"
