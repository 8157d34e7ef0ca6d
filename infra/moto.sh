#!/usr/bin/env bash
# Starts the moto server (S3, SQS, SES) on a port (free one if 0), waits until it answers,
# prints the port. Usage: infra/moto.sh PORT PIDFILE LOGFILE
set -euo pipefail
port=${1:-0}
pidfile=${2:-.local/moto.pid}
log=${3:-.local/moto.log}
mkdir -p "$(dirname "$pidfile")" "$(dirname "$log")"
if [ "$port" = 0 ]; then
  port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
fi
# moto as it is: it serves S3, SQS and SES only (DynamoDB is dynoxide's,
# infra/dynoxide.sh), so none of its DynamoDB needs patching.
.venv/bin/moto_server -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
echo $! >"$pidfile"
for _ in $(seq 1 100); do
  if curl -fsS -o /dev/null "http://127.0.0.1:$port/moto-api/" 2>/dev/null; then
    echo "$port"
    exit 0
  fi
  sleep 0.1
done
echo "moto did not start on port $port; see $log" >&2
exit 1
