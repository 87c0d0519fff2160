#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for tests/test_slurm_cluster.py.
#
#   bash tests/cluster/slurm_up.sh STATE_DIR      # install if missing, configure, start, wait idle
#   bash tests/cluster/slurm_up.sh --down STATE_DIR
#
# Installs Debian's slurm-wlm and munge when they are missing (root only), writes a slurm.conf
# with this machine as controller and its only node (all its CPUs, the partitions `cpu` and `gpu` that profiles/slurm names, a placeholder
# `gpu` GRES,
# job completion log for `sacct --completion`), starts munged, slurmctld and slurmd with their
# state, logs and pid files under STATE_DIR, and waits until the node is idle. --down stops
# the daemons by their pids. Exit 3: SLURM cannot be installed or run here (the test skips on it).
set -euo pipefail

if [[ "${1:-}" == "--down" ]]; then
  state=$(realpath "$2")
  for d in slurmd slurmctld munged; do
    if [[ -s "$state/$d.pid" ]]; then
      kill "$(cat "$state/$d.pid")" 2>/dev/null || true
    fi
  done
  # the default-path link made at start-up, if it was ours
  if [[ -f "$state/etc_link" && "$(readlink /etc/slurm/slurm.conf)" == "$state/slurm.conf" ]]; then
    rm -f /etc/slurm/slurm.conf
  fi
  sleep 1
  exit 0
fi

state=$(realpath -m "$1")
mkdir -p "$state"/{spool,ctld,log,munge}

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    echo "slurm_up: slurm-wlm/munge missing and cannot be installed (needs root and apt-get)" >&2
    exit 3
  fi
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -q && apt-get install -y -q --no-install-recommends slurm-wlm munge; } \
    >"$state/log/apt.log" 2>&1 || {
    echo "slurm_up: apt-get install slurm-wlm munge failed (see $state/log/apt.log)" >&2
    exit 3
  }
fi

host=$(hostname -s)
cpus=$(nproc)
mem=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024))
user=$(id -un)
# Two free ports, so that a cluster left running elsewhere on this machine does not clash.
read -r ctld_port slurmd_port < <(python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
PY
)

# munge: its own key, socket and pid under STATE_DIR (the system's munged is left alone).
if [[ ! -s "$state/munge/munge.key" ]]; then
  dd if=/dev/urandom of="$state/munge/munge.key" bs=1024 count=1 status=none
fi
chmod 700 "$state/munge"
chmod 400 "$state/munge/munge.key"
sock="$state/munge/munge.socket.2"
munged --force --key-file="$state/munge/munge.key" --socket="$sock" \
  --pid-file="$state/munged.pid" --log-file="$state/log/munged.log" \
  --seed-file="$state/munge/munge.seed"

cat >"$state/slurm.conf" <<CONF
ClusterName=kmedqa-test
SlurmctldHost=$host
SlurmUser=$user
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$sock
CredType=cred/munge
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=300
JobCompType=jobcomp/filetxt
JobCompLoc=$state/log/jobcomp.log
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
GresTypes=gpu
NodeName=$host CPUs=$cpus RealMemory=$mem Gres=gpu:1 State=UNKNOWN
PartitionName=cpu Nodes=$host Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$host MaxTime=INFINITE State=UP
CONF
# The profile's GPU rules ask for gres gpu:1: a `gpu` GRES backed by /dev/null (no device) lets them
# schedule on this CPU node, one at a time.
echo "NodeName=$host Name=gpu File=/dev/null" >"$state/gres.conf"
export SLURM_CONF="$state/slurm.conf"
# Job steps cannot rely on SLURM_CONF: snakemake-executor-plugin-slurm-jobstep drops every
# inherited SLURM_* variable before its inner `srun`, which then reads the default path. Link
# it there when this machine has no SLURM config of its own (removed again by --down).
if [[ ! -e /etc/slurm/slurm.conf ]]; then
  if mkdir -p /etc/slurm 2>/dev/null && ln -s "$SLURM_CONF" /etc/slurm/slurm.conf 2>/dev/null; then
    touch "$state/etc_link"
  fi
fi
if [[ "$(readlink -f /etc/slurm/slurm.conf)" != "$(readlink -f "$SLURM_CONF")" ]]; then
  echo "slurm_up: /etc/slurm/slurm.conf is not this test cluster's (a SLURM config of this machine's own, or no permission to link it): job steps would read it" >&2
  exit 3
fi

slurmctld -f "$SLURM_CONF" -i
slurmd -f "$SLURM_CONF"

for _ in $(seq 1 60); do
  if sinfo -h -N -o '%T' 2>/dev/null | grep -q '^idle'; then
    echo "slurm_up: node $host idle (SLURM_CONF=$SLURM_CONF)"
    exit 0
  fi
  sleep 1
done
echo "slurm_up: the node never became idle; see $state/log/" >&2
sinfo -N >&2 || true
exit 1
