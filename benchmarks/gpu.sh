#!/usr/bin/env bash
# Every GPU benchmark of the GPU-speed issue in one run on a lent device machine, 8 minutes in all,
# each figure beside the plain fp32 eager path of the same code (the authors' math), as JSON under
# $OUT (the device tool brings $OUT back). Installs nothing: the device image's python3 holds
# torch, numpy, scipy, pandas, OpenCV (without contrib's TV-L1: no OpenCV comparison there) and
# tqdm; other packages the imports need travel as wheels (see the device tool's README).
#
#   run:  PYTHONPATH=$PWD bash benchmarks/gpu.sh            (timeout_s 540)
# Output: $OUT/<section>.log for each section, $OUT/gpu.json with every `name: value` line and the
# ratios. A section that runs out of its time or fails is recorded as such; the others go on.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$(mktemp -d)}
PY=${PY:-python3}
export PYTHONUNBUFFERED=1 PYTHONPATH=${PYTHONPATH:-$PWD}
end=$((SECONDS + 470))  # 7 min 50 s, leaving time to write the JSON inside an 8 minute limit

section() {  # section NAME SECONDS CMD...
  local name=$1 want=$2; shift 2
  local left=$((end - SECONDS))
  if ((left < 15)); then echo "$name: skipped (overall time limit)" | tee "$OUT/$name.log"; return; fi
  ((want > left)) && want=$left
  echo "== $name (limit ${want}s): $*"
  timeout "$want" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  ((rc == 0)) || echo "exit: $rc" >>"$OUT/$name.log"
  tail -n 3 "$OUT/$name.log"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >"$OUT/device.log" 2>&1
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" >>"$OUT/device.log" 2>&1
cat "$OUT/device.log"

# Training step, paper size: plain fp32 eager (no autocast, no fused Adam) vs the fast path.
section train_plain_b8   45 $PY benchmarks/train_step.py --device cuda --batch 8  --steps 5 --warmup 2 --no-fused-adam
section train_fast_b8    45 $PY benchmarks/train_step.py --device cuda --batch 8  --steps 5 --warmup 2 --amp
section train_plain_b64  60 $PY benchmarks/train_step.py --device cuda --batch 64 --steps 5 --warmup 2 --no-fused-adam
section train_fast_b64   60 $PY benchmarks/train_step.py --device cuda --batch 64 --steps 5 --warmup 2 --amp
section train_compile_b64 100 $PY benchmarks/train_step.py --device cuda --batch 64 --steps 5 --warmup 3 --amp --compile
# WaveNet (24 layers, 512 channels): reference sampler (eager) vs the fast CUDA-graph sampler.
section wavenet_fp32     80 $PY benchmarks/vocoder.py --device cuda --size paper --batches 1 64 256 --no-generate
section wavenet_bf16     60 $PY benchmarks/vocoder.py --device cuda --size paper --batches 1 64 256 --dtype bfloat16 --no-generate
# Features: batched torch TV-L1 and BN-Inception on the GPU, 214 pairs at 340x256.
section features         60 $PY benchmarks/features_gpu.py --device cuda --json "$OUT/features.json"

$PY - "$OUT" <<'PYEOF'
import json, pathlib, re, sys
out = pathlib.Path(sys.argv[1])
figs = {}
for log in sorted(out.glob("*.log")):
    vals = {}
    for line in log.read_text(errors="replace").splitlines():
        m = re.match(r"^([A-Za-z0-9_ ().-]+):\s*([-+0-9.eE]+)\s*([a-zA-Z/%x]*)$", line.strip())
        if m:
            vals[m.group(1).strip()] = float(m.group(2))
    vals["log_tail"] = log.read_text(errors="replace").splitlines()[-3:]
    figs[log.stem] = vals
def get(sec, key):
    return figs.get(sec, {}).get(key)
ratios = {}
for b in ("b8", "b64"):
    plain, fast = get(f"train_plain_{b}", "train_step_s"), get(f"train_fast_{b}", "train_step_s")
    if plain and fast:
        ratios[f"train_{b}_fast_vs_plain"] = plain / fast
plain, comp = get("train_plain_b64", "train_step_s"), get("train_compile_b64", "train_step_s")
if plain and comp:
    ratios["train_b64_compile_vs_plain"] = plain / comp
figs["ratios"] = ratios
(out / "gpu.json").write_text(json.dumps(figs, indent=1))
print(json.dumps(ratios, indent=1))
PYEOF
echo "figures: $OUT/gpu.json"
