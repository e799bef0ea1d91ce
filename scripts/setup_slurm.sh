#!/usr/bin/env bash
# A single-node SLURM on this machine, from Debian packages, for tests/test_slurm.py (and for trying the SLURM profile).
#
#   sudo scripts/setup_slurm.sh        # idempotent: installs, configures and starts only what is missing
#
# Installs munge, slurmctld, slurmd and slurm-client; writes /etc/slurm/slurm.conf for `hostname -s` with the CPUs
# and memory that `slurmd -C` reports and one default partition (ttdm); creates the munge key if missing; starts
# munged, slurmctld and slurmd directly (no systemd needed) and waits until `sinfo` shows the node idle. The settings
# suit a container: no cgroups (proctrack/linuxproc, task/none) and no accounting (no slurmdbd; the SLURM profile
# reads job states with squeue). Exits non-zero with the reason when SLURM cannot be set up or started.
# Environment: SLURM_PARTITION_NAME (default ttdm), SLURM_SETUP_TIMEOUT (seconds to wait for the node, default 60).
set -euo pipefail

PARTITION="${SLURM_PARTITION_NAME:-ttdm}"
TIMEOUT="${SLURM_SETUP_TIMEOUT:-60}"
CONF_DIR=/etc/slurm
LOG_DIR=/var/log/slurm

die() { echo "setup_slurm: $*" >&2; exit 1; }
say() { echo "setup_slurm: $*"; }

[ "$(id -u)" = 0 ] || die "must run as root (it installs packages and starts daemons)"

# ---------------------------------------------------------------- packages
PACKAGES="munge slurmctld slurmd slurm-client"
missing=""
for cmd in munged slurmctld slurmd sinfo; do
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing="$missing $cmd"
done
if [ -n "$missing" ]; then
  command -v apt-get >/dev/null || die "missing$missing and no apt-get to install $PACKAGES"
  say "installing $PACKAGES"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -q --no-install-recommends $PACKAGES >/tmp/setup_slurm_apt.log 2>&1; then
    apt-get update -q >>/tmp/setup_slurm_apt.log 2>&1 || true
    apt-get install -y -q --no-install-recommends $PACKAGES >>/tmp/setup_slurm_apt.log 2>&1 \
      || die "apt-get install $PACKAGES failed (log: /tmp/setup_slurm_apt.log)"
  fi
fi
export PATH="$PATH:/usr/sbin:/sbin"

# ---------------------------------------------------------------- munge
mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
if [ ! -s /etc/munge/munge.key ]; then
  say "creating /etc/munge/munge.key"
  if command -v mungekey >/dev/null; then
    mungekey --create --keyfile=/etc/munge/munge.key --force
  else
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
fi
if id munge >/dev/null 2>&1; then
  chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge
fi
chmod 0700 /etc/munge /var/lib/munge /var/log/munge
chmod 0755 /run/munge
chmod 0400 /etc/munge/munge.key

munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }
if ! munge_ok; then
  say "starting munged"
  rm -f /run/munge/munge.socket.2.lock
  if id munge >/dev/null 2>&1 && command -v runuser >/dev/null; then
    runuser -u munge -- munged || munged --force || true
  else
    munged --force || true
  fi
  for _ in $(seq 20); do munge_ok && break; sleep 0.5; done
  munge_ok || die "munged does not answer (munge -n | unmunge fails; see /var/log/munge/munged.log)"
fi

# ---------------------------------------------------------------- slurm.conf
HOST="$(hostname -s)"
# e.g. "NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24105"
NODE_LINE="$(slurmd -C 2>/dev/null | grep '^NodeName=' | head -1)" || true
[ -n "$NODE_LINE" ] || die "slurmd -C reports no node configuration"
mkdir -p "$CONF_DIR" "$LOG_DIR" /var/spool/slurmctld /var/spool/slurmd
NEW_CONF="$(mktemp)"
cat >"$NEW_CONF" <<EOF
# Written by scripts/setup_slurm.sh: a single-node cluster for tests, without cgroups and without accounting.
ClusterName=ttdm
SlurmctldHost=${HOST}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=${LOG_DIR}/slurmctld.log
SlurmdLogFile=${LOG_DIR}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
# squeue lists finished jobs for MinJobAge seconds; the SLURM profile's status checks rely on it
MinJobAge=600
SlurmctldTimeout=120
SlurmdTimeout=300
InactiveLimit=0
KillWait=5
Waittime=0
${NODE_LINE} NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=${PARTITION} Nodes=${HOST} Default=YES MaxTime=INFINITE State=UP
EOF
changed=0
if ! cmp -s "$NEW_CONF" "$CONF_DIR/slurm.conf"; then
  say "writing $CONF_DIR/slurm.conf for node $HOST"
  install -m 0644 "$NEW_CONF" "$CONF_DIR/slurm.conf"
  changed=1
fi
rm -f "$NEW_CONF"

# ---------------------------------------------------------------- daemons
running() {  # running PIDFILE NAME: the daemon of this pid file is alive
  [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null && grep -q "$2" "/proc/$(cat "$1")/comm" 2>/dev/null
}
stop() {  # stop PIDFILE NAME: the daemon we started before (its pid file), nothing else
  if running "$1" "$2"; then
    kill "$(cat "$1")" 2>/dev/null || true
    for _ in $(seq 20); do running "$1" "$2" || break; sleep 0.5; done
  fi
}
if [ "$changed" = 1 ]; then
  stop /run/slurmd.pid slurmd
  stop /run/slurmctld.pid slurmctld
fi
if ! running /run/slurmctld.pid slurmctld; then
  say "starting slurmctld"
  slurmctld || die "slurmctld did not start (see $LOG_DIR/slurmctld.log)"
fi
for _ in $(seq 30); do scontrol ping 2>/dev/null | grep -q "is UP" && break; sleep 0.5; done
scontrol ping 2>/dev/null | grep -q "is UP" || die "slurmctld does not answer (see $LOG_DIR/slurmctld.log)"
if ! running /run/slurmd.pid slurmd; then
  say "starting slurmd"
  slurmd || die "slurmd did not start (see $LOG_DIR/slurmd.log)"
fi

# ---------------------------------------------------------------- wait for the node
deadline=$(( $(date +%s) + TIMEOUT ))
state=""
while [ "$(date +%s)" -lt "$deadline" ]; do
  state="$(sinfo -h -N -n "$HOST" -o %t 2>/dev/null | head -1 | tr -d '~#$@^-')"
  case "$state" in
    idle|mix|alloc|comp) break ;;
    drain|drng|down) scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true ;;
  esac
  sleep 1
done
case "$state" in
  idle|mix|alloc|comp) ;;
  *) die "node $HOST is '${state:-not listed}' after ${TIMEOUT}s, not idle; reason: \
$(sinfo -h -N -n "$HOST" -o %E 2>/dev/null); see $LOG_DIR/slurmd.log and $LOG_DIR/slurmctld.log" ;;
esac
say "SLURM is up: partition $PARTITION, node $HOST ($state): $(echo "$NODE_LINE" | grep -o 'CPUs=[0-9]*') \
$(echo "$NODE_LINE" | grep -o 'RealMemory=[0-9]*')"
