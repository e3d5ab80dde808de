#!/usr/bin/env bash
# Evaluate a checkpoint on N processes:
#   tools/dist_test.sh CONFIG CHECKPOINT N [test.py options]
# NNODES, NODE_RANK, MASTER_ADDR and PORT work as in dist_train.sh.
set -euo pipefail
CONFIG=$1
CHECKPOINT=$2
NPROC=$3
HVLM_DIST_TOOL=test.py exec "$(dirname "$0")/dist_train.sh" \
    "$CONFIG" "$NPROC" "$CHECKPOINT" "${@:4}"
