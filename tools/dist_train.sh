#!/usr/bin/env bash
# Train on N processes of this machine (or of several, with NNODES etc.):
#   tools/dist_train.sh CONFIG N [train.py options]
# Multi-machine: NNODES=2 NODE_RANK=0|1 MASTER_ADDR=host PORT=29500 on each.
# Without a GPU the processes talk over gloo; with GPUs, NCCL.
# (HVLM_DIST_TOOL=test.py runs tools/test.py instead: see dist_test.sh.)
set -euo pipefail
CONFIG=$1
NPROC=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"

PYTHONPATH="$ROOT:${PYTHONPATH:-}" \
python -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$NPROC" \
    --master_port="$PORT" \
    "$ROOT/tools/${HVLM_DIST_TOOL:-train.py}" "$CONFIG" "${@:3}" --launcher pytorch
