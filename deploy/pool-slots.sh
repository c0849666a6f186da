#!/usr/bin/env bash
# The memory rule for heavy GADM tasks: print the slots of the heavy pool,
#   floor((available MB - GADM_STACK_RESERVE_MB) / GADM_TASK_PEAK_MB), at least 1,
# where available is MemAvailable (or the cgroup's memory limit when lower). GADM_HEAVY_POOL_SLOTS,
# when set, wins; GADM_MEM_AVAILABLE_MB replaces the measurement (for planning another machine).
set -euo pipefail
if [ -n "${GADM_HEAVY_POOL_SLOTS:-}" ]; then echo "$GADM_HEAVY_POOL_SLOTS"; exit; fi
peak="${GADM_TASK_PEAK_MB:-1024}" reserve="${GADM_STACK_RESERVE_MB:-2048}"
avail="${GADM_MEM_AVAILABLE_MB:-}"
if [ -z "$avail" ]; then
  avail=$(awk '/^MemAvailable:/ {print int($2 / 1024)}' /proc/meminfo)
  limit=$(cat /sys/fs/cgroup/memory.max 2>/dev/null || echo max)
  if [ "$limit" != max ] && [ $((limit / 1048576)) -lt "$avail" ]; then avail=$((limit / 1048576)); fi
fi
slots=$(( (avail - reserve) / peak ))
echo $(( slots < 1 ? 1 : slots ))
