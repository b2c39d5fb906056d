#!/usr/bin/env bash
# Everything the GPU path needs checked, in one run of about 10 minutes on a GPU machine:
# the sandbox (doctor's live CUDA check and, where CUDA does not start, the layer that stops it),
# the GPU tests, and both benchmarks with the GPU named. Figures go to $OUT (default ./gpu-check),
# one file per step, so a step that runs out of time still leaves the others.
#
#   bash scripts/gpu_check.sh            # on the GPU machine, from the repository root
#   WHEELS=dir bash scripts/gpu_check.sh # first install the wheels in dir (a machine without a registry)
#
# What to read afterwards: doctor.json ("gpu": starts, error, diagnosis), pytest_gpu.log, and
# eval_throughput_cuda.json / campaign_rate_cuda.json, whose figures go into docs/evaluator.md
# with the GPU's name and the date.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-gpu-check}"
mkdir -p "$OUT"
PY="${PYTHON:-python3}"
if [ -n "${WHEELS:-}" ]; then
  "$PY" -m pip install -q --no-index --find-links "$WHEELS" "$WHEELS"/*.whl >"$OUT/pip.log" 2>&1 || true
fi
"$PY" -m pip install -q --no-deps --no-build-isolation -e . >>"$OUT/pip.log" 2>&1 || true
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1 || true
step() {  # step NAME SECONDS COMMAND...: run it under a time limit, its output in $OUT/NAME.log
  local name=$1 limit=$2
  shift 2
  echo "== $name (at most ${limit} s)"
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  echo "   exit $? ($(tail -n 1 "$OUT/$name.log" | cut -c1-160))"
}
step doctor 120 "$PY" -m evosearch.cli doctor --gpu --json
cp "$OUT/doctor.log" "$OUT/doctor.json"
step doctor_namespaces 120 "$PY" -m evosearch.cli doctor --gpu --sandbox namespaces --json
step pytest_gpu 150 "$PY" -m pytest -q -p no:cacheprovider -m gpu tests/train/test_gpu.py
step eval_throughput_cuda 200 "$PY" bench/eval_throughput.py --device cuda --backends native \
  --seeds 256,1024,4096,16384 --steps 20480 --episodes 16 --references cleanrl,jax \
  --json "$OUT/eval_throughput_cuda.json"
step campaign_rate_cuda 150 "$PY" bench/campaign_rate.py --device cuda --suite quick,classic-quick \
  --rounds 1 --parallel 8 --campaign-minutes 0.5 --json "$OUT/campaign_rate_cuda.json"
echo "figures in $OUT"
