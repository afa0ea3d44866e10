#!/usr/bin/env bash
# The one GPU check: every `gpu` test with a per-test timeout, then the GPU speed and memory
# benchmark, JSON and logs under $OUT. Sized to finish in about 6 minutes on one H100/H200 (the whole check
# took 208 s on an H200 on 2026-11-27, seventh session, with TEST_BUDGET=120 BENCH_BUDGET=230).
#
#   OUT=gpu-check bash benchmarks/gpu_check.sh            # on a machine with CuPy and a CUDA device
#
# On the lent device machine (no network), the wheels it lacks travel in .whl/ (see README, GPU):
# array-api-compat, array-api-strict, ducc0, dask, partd, locket, cucim-cu13.
# Budgets (seconds) can be set: TEST_BUDGET (whole gpu test run), TEST_TIMEOUT (one test),
# BENCH_BUDGET, BENCH_SIZES, BENCH_PARTS, PROFILE_BUDGET. PROFILE=1 adds the cProfile of blind_l0 and
# restore() (about 35 s more); NO_PROBE=1 skips the probe, NO_ITERATION_PARTS=1 the per-launch timings
# (a short rerun sets both), NO_DTV_FUSED=1 the fused-dTV timing (benchmarks/dtv_fused_speed.py, at most 120 s).
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-check}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
if [ -z "${NO_WHEELS:-}" ] && [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/xrfgpu-site .whl/*.whl \
    || { echo "wheel install failed"; exit 3; }
  export PYTHONPATH=/tmp/xrfgpu-site:$PWD
else
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
t0=$(date +%s)
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv; "$PY" -c "import cupy, numpy, scipy; print('cupy', cupy.__version__, 'numpy', numpy.__version__, 'scipy', scipy.__version__)"; } > "$OUT/environment.txt" 2>&1
cat "$OUT/environment.txt"

if [ -z "${NO_PROBE:-}" ]; then
  echo "== probe"
  timeout 60 "$PY" benchmarks/gpu_probe.py "$OUT/gpu_probe.json" > "$OUT/gpu-probe.log" 2>&1; echo "probe rc=$?"; cat "$OUT/gpu-probe.log" | cut -c1-400
fi

echo "== gpu tests"
timeout "${TEST_BUDGET:-200}" "$PY" -m pytest -m gpu -v -p no:cacheprovider -p no:benchmark -rfE -n "${TEST_WORKERS:-8}" --dist load \
  --timeout="${TEST_TIMEOUT:-30}" -o faulthandler_timeout="$(( ${TEST_TIMEOUT:-30} - 5 ))" \
  --durations=25 --junitxml="$OUT/gpu-tests.xml" ${TEST_ARGS:-tests} > "$OUT/gpu-tests.log" 2>&1
echo "gpu tests rc=$? after $(( $(date +%s) - t0 )) s"
grep -E "passed|failed|error" "$OUT/gpu-tests.log" | tail -3
# -v prints each test's outcome as it ends, so a run cut off by TEST_BUDGET still names its failures
grep -E " (FAILED|ERROR) " "$OUT/gpu-tests.log" | sed 's/^\[gw[0-9]*\] //' | sort -u | head -40
"$PY" - "$OUT/gpu-tests.xml" "$OUT/gpu-tests.json" <<'PYEOF'
import json, sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception as exc:  # the run was cut off before pytest wrote its report
    json.dump({"error": f"no junit report: {exc}"}, open(sys.argv[2], "w")); sys.exit(0)
cases = []
for tc in root.iter("testcase"):
    outcome = "passed"
    for tag in ("failure", "error", "skipped"):
        if tc.find(tag) is not None:
            outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
    cases.append({"test": f"{tc.get('classname')}::{tc.get('name')}", "outcome": outcome, "s": float(tc.get("time", 0))})
summary = {k: sum(c["outcome"] == k for c in cases) for k in ("passed", "failed", "error", "skipped")}
json.dump({"summary": summary, "slowest": sorted(cases, key=lambda c: -c["s"])[:15],
           "not_passed": [c for c in cases if c["outcome"] in ("failed", "error")]}, open(sys.argv[2], "w"), indent=1)
print(summary)
PYEOF

echo "== gpu speed"
timeout "${BENCH_BUDGET:-240}" "$PY" benchmarks/gpu_speed.py --out "$OUT/gpu_speed.json" \
  --sizes "${BENCH_SIZES:-512,1024,2048,4096,8192}" --parts "${BENCH_PARTS:-rl,taps,stack,numpy,blind,restore,joint}" > "$OUT/gpu-speed.log" 2>&1
echo "gpu speed rc=$? after $(( $(date +%s) - t0 )) s"
tail -24 "$OUT/gpu-speed.log"

if [ -z "${NO_DTV_FUSED:-}" ]; then
  echo "== dTV fused kernels (one outer dTV call of 3 x 288^2 and the fixed joint call, fused against the loop)"
  timeout 120 "$PY" benchmarks/dtv_fused_speed.py --json "$OUT/dtv_fused_speed.json" > "$OUT/dtv-fused-speed.log" 2>&1
  echo "dtv fused rc=$? after $(( $(date +%s) - t0 )) s"
  tail -1 "$OUT/dtv-fused-speed.log" | cut -c1-1200
fi

if [ -z "${NO_ITERATION_PARTS:-}" ]; then
  echo "== iteration parts (each launch of one RL iteration against the copy bandwidth)"
  timeout 120 "$PY" benchmarks/gpu_iteration_parts.py "$OUT/gpu_iteration_parts.json" --sizes 2048,4096,8192 \
    > "$OUT/gpu-iteration-parts.log" 2>&1
  echo "iteration parts rc=$? after $(( $(date +%s) - t0 )) s"
  grep -v "^direct" "$OUT/gpu-iteration-parts.log" | cut -c1-600 | tail -3
  grep "^direct" "$OUT/gpu-iteration-parts.log" | cut -c1-1600
fi

if [ -n "${PROFILE:-}" ]; then
  echo "== profile (blind_l0 512², restore() 1024²: cProfile and the front door's stage times)"
  timeout "${PROFILE_BUDGET:-90}" "$PY" benchmarks/gpu_profile.py "$OUT" > "$OUT/gpu-profile.log" 2>&1
  echo "profile rc=$? after $(( $(date +%s) - t0 )) s"
  tail -4 "$OUT/gpu-profile.log"
fi
