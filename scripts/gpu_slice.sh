#!/usr/bin/env bash
# A timed slice of the full preset on one CUDA GPU, for a machine that has torch but not this project's venv.
#
#   bash scripts/gpu_slice.sh [OUTDIR]
#
# Runs the parts named in PARTS (default "dsno attention bench"), one after the other so that no two jobs share the GPU while they are timed (--resources gpu=1):
#   1. the DSNO chain of the full preset on 8gaussians, seed 0: data, the mlp teacher (30k steps), its 55k DDIM-512
#      trajectories, the M = 4 student (20k steps) and `ttdm dsno-eval` (forward time at B = 1 and 10000);
#   2. the attention scaling benchmark (softmax against FAVOR+, L up to 16384, and U-Net steps at 32x32 and 64x64);
#   3. the `bench` job of the full preset (train steps/s and sampling s per 1000 samples of every main model;
#      EXTRA_CONFIG=file.yaml is merged over the preset, e.g. a smaller `bench: {repeats: 2}`);
#   forward: scripts/dsno_forward_bench.py, the students' forward time and train step without the chain.
# Each part has its own time limit (PART1_S, PART2_S, PART3_S seconds) so that one slow part leaves the others their
# time. Wheels of the packages the machine lacks (snakemake, jsonschema, teneva; diffusers for the bench) are
# installed from .whl/ when it is there; fetch them where pip works, for the machine's Python (3.12 here), e.g.
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 -d .whl \
#       snakemake==9.27.1 jsonschema==4.26.0 teneva==0.14.11 ...   (each dependency the machine lacks, by name)
# Everything it wrote is packed into OUTDIR/gpu_slice.tar.gz, with the GPU's name and driver.
set -u
OUTDIR=${1:-${OUT:-results/gpu}}
mkdir -p "$OUTDIR"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
mkdir -p /tmp/ttdm-bin
printf '#!/bin/sh\nexec python3 -m ttdm "$@"\n' > /tmp/ttdm-bin/ttdm && chmod +x /tmp/ttdm-bin/ttdm
export PATH=/tmp/ttdm-bin:$PATH
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv > "$OUTDIR/nvidia_smi.csv" 2>&1
python3 -c "import torch, sys; print(sys.version.split()[0], torch.__version__, torch.cuda.get_device_name(0))" \
  | tee "$OUTDIR/versions.txt"

sm() {  # targets... (--config takes every word after it, so it comes last)
  python3 -m snakemake "$@" --configfile workflow/presets/full.yaml ${EXTRA_CONFIG:-} --cores 16 --resources gpu=1 \
    --scheduler greedy --keep-going --config device=cuda
}
export -f sm
export EXTRA_CONFIG=${EXTRA_CONFIG:-}
part() {  # name, seconds, command...
  local name=$1 limit=$2; shift 2
  local tick=$(date +%s)
  timeout "$limit" "$@" > "$OUTDIR/$name.log" 2>&1
  local rc=$?
  echo "$name rc=$rc wall_s=$(( $(date +%s) - tick ))" | tee -a "$OUTDIR/parts.txt"
}
for name in ${PARTS:-dsno attention bench}; do
  case $name in
    dsno) part dsno "${PART1_S:-300}" bash -c 'sm "$@"' sm results/dsno/8gaussians/mlp-dsno/0.csv ;;
    forward) part forward "${PART1_S:-300}" python3 scripts/dsno_forward_bench.py --device cuda \
               --out results/bench/dsno_forward.csv ;;
    attention) part attention "${PART2_S:-60}" python3 scripts/attention_bench.py --device cuda --unet \
                 --results results/gpu_attention ;;
    bench) part bench "${PART3_S:-150}" bash -c 'sm "$@"' sm results/bench/train.csv ;;
  esac
done

tar -czf "$OUTDIR/gpu_slice.tar.gz" --exclude='*.pt' --exclude='*.npz' \
  results/dsno results/bench results/gpu_attention results/runs results/trajectories benchmarks logs \
  "$OUTDIR"/*.log "$OUTDIR/parts.txt" 2>/dev/null
tail -n 3 "$OUTDIR"/*.log
cat "$OUTDIR/parts.txt"
