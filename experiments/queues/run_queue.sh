#!/usr/bin/env bash
# Runs the commands of a queue file one after the other, each in its own resumable --workdir, so a long
# list of runs (seeds, likelihood presets) can go on in the background and be resumed by running this again.
#
#   nohup experiments/queues/run_queue.sh experiments/queues/science.txt RUNS_ROOT > queue.log 2>&1 &
#
# VAECNN_DATA_DIR names the datasets folder. Each line of the queue file is a `./launch.sh ...` command in which $RUNS stands for RUNS_ROOT; blank
# lines and lines starting with # are skipped. A command that exits 0 is recorded in RUNS_ROOT/queue.done
# and not run again; one stopped by a signal (exit 75) stops the queue, so rerunning continues it; any
# other failure is logged and the queue goes on to the next line. The queue file is read again after
# every command, so lines can be added while it runs.
set -uo pipefail
queue_file="$(realpath "${1:?usage: run_queue.sh QUEUE_FILE RUNS_ROOT}")"
export RUNS="${2:?usage: run_queue.sh QUEUE_FILE RUNS_ROOT}"
cd "$(dirname "$0")/../.."
mkdir -p "$RUNS"
done_file="$RUNS/queue.done"
touch "$done_file"
trap 'kill -TERM "$child" 2>/dev/null; wait "$child"; exit 75' TERM INT
while true; do
  next=""
  while IFS= read -r line; do
    [[ -z "${line// }" || "$line" == \#* ]] && continue
    grep -qxF -- "$line" "$done_file" || { next="$line"; break; }
  done < "$queue_file"
  [[ -n "$next" ]] || { echo "queue: every line of $queue_file is done"; exit 0; }
  echo "queue: $(date -u '+%F %T') start: $next"
  start=$SECONDS
  bash -c "$next" &
  child=$!
  wait "$child"; status=$?
  echo "queue: $(date -u '+%F %T') exit $status after $((SECONDS - start)) s: $next"
  case "$status" in
    0) echo "$next" >> "$done_file" ;;
    75) echo "queue: stopped by a signal; rerun to continue"; exit 75 ;;
    *) echo "$next" >> "$RUNS/queue.failed"; echo "$next" >> "$done_file" ;;
  esac
done
