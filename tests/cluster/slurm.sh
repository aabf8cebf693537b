#!/usr/bin/env bash
# A real single-node Slurm on this machine for the tests: munge and Slurm's daemons with their state,
# sockets and logs in one folder, on ports of their own, so that nothing of the system's (/etc/slurm,
# /run/munge) is used or changed. Debian's packages: slurmctld slurmd slurm-client munge (.ci/run installs them).
#   tests/cluster/slurm.sh start DIR   -> starts, waits until the node is idle; `export SLURM_CONF=DIR/slurm.conf`
#   tests/cluster/slurm.sh stop DIR    -> stops the daemons (the folder stays)
set -euo pipefail
action=${1:?start or stop}
dir=$(realpath -m "${2:?folder}")
conf=$dir/slurm.conf

stop() {
  for name in slurmd slurmctld munged; do
    [ -f "$dir/$name.pid" ] && kill "$(cat "$dir/$name.pid")" 2>/dev/null || true
  done
  for name in slurmd slurmctld munged; do
    for _ in $(seq 50); do
      [ -f "$dir/$name.pid" ] && kill -0 "$(cat "$dir/$name.pid")" 2>/dev/null || break
      sleep 0.2
    done
    rm -f "$dir/$name.pid"
  done
}

if [ "$action" = stop ]; then stop; exit 0; fi
[ "$action" = start ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
for tool in munged slurmctld slurmd sbatch; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || { echo "missing $tool (apt-get install slurmctld slurmd slurm-client munge)" >&2; exit 3; }
done
[ "$(id -u)" = 0 ] || { echo "the test Slurm runs its daemons as root; this is uid $(id -u)" >&2; exit 3; }
export PATH=$PATH:/usr/sbin
mkdir -p "$dir/state" "$dir/spool"
chmod 700 "$dir"
[ -f "$dir/munge.key" ] || { head -c 1024 /dev/urandom > "$dir/munge.key"; chmod 400 "$dir/munge.key"; }
node=$(hostname -s)
cpus=$(nproc)
memory=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
# Free ports, so that a Slurm of the system's (or of another test run) is left alone.
read -r ctl_port node_port < <(python3 - <<'PY'
import socket
ports = []
for _ in range(2):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); ports.append(s.getsockname()[1]); s.close()
print(*ports)
PY
)
cat > "$conf" <<CONF
ClusterName=ganzootest
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$ctl_port
SlurmdPort=$node_port
AuthType=auth/munge
AuthInfo=socket=$dir/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
JobRequeue=1
KillWait=20
MinJobAge=600
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF
stop
munged --key-file "$dir/munge.key" --socket "$dir/munge.socket" --pid-file "$dir/munged.pid" \
  --log-file "$dir/munged.log" --seed-file "$dir/munged.seed" --force
slurmctld -f "$conf" -i
slurmd -f "$conf"
export SLURM_CONF=$conf
for _ in $(seq 60); do
  state=$(sinfo -h -N -o %t 2>/dev/null | head -1 || true)
  case "$state" in idle*|mix*|alloc*) echo "slurm up: node $node, $cpus CPUs, SLURM_CONF=$conf"; exit 0 ;; esac
  sleep 0.5
done
echo "slurm did not come up (node state: ${state:-none}); logs in $dir" >&2
tail -5 "$dir/slurmctld.log" "$dir/slurmd.log" >&2 || true
exit 1
