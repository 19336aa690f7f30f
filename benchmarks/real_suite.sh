#!/usr/bin/env bash
# Prepare the real suite of `benchmarks/run.py --real` from a checkout you provide (no fetching):
#   bash benchmarks/real_suite.sh CHECKOUT [VENV]
# CHECKOUT: a networkx source tree at networkx-3.6.1 (commit 7530809bfa1ea7ed6fdf918a4d1431488953cb1f),
# e.g. `git clone --branch networkx-3.6.1 https://github.com/networkx/networkx CHECKOUT` where a
# network is allowed, or `git archive networkx-3.6.1 | tar -x -C CHECKOUT` from a mirror.
# VENV: the benchmark's virtualenv (default .venv). networkx is installed into it editable and
# without dependencies (it has none at run time; numpy is there already as Ray's, scipy is not,
# so the scipy tests skip). Prints the command that measures it.
set -euo pipefail
checkout=${1:?usage: real_suite.sh CHECKOUT [VENV]}
venv=${2:-.venv}
if [ ! -f "$checkout/networkx/__init__.py" ]; then
    echo "real_suite.sh: $checkout is not a networkx checkout (no networkx/__init__.py)" >&2
    exit 4
fi
"$venv/bin/pip" install --quiet --no-deps -e "$checkout"
"$venv/bin/python" -c "import networkx; print('networkx', networkx.__version__, 'from', networkx.__file__)"
echo "measure it with:"
echo "  $venv/bin/python benchmarks/run.py --case real --real $checkout"
echo "or, with every other case: $venv/bin/python benchmarks/run.py --all --real $checkout"
