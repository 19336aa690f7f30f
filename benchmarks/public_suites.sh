#!/usr/bin/env bash
# Prepare the public suites of `benchmarks/run.py --issue18` from checkouts you provide (no fetching):
#   bash benchmarks/public_suites.sh [sqlalchemy=CHECKOUT] [redis-py=CHECKOUT] [networkx=CHECKOUT] [VENV=.venv]
# The commits measured (benchmarks/public.py says which files and arguments):
#   sqlalchemy  https://github.com/sqlalchemy/sqlalchemy  f35da7e2b9349a08b8de1f6bd3b07c8bf8616790
#   redis-py    https://github.com/redis/redis-py          34817ce2
#   networkx    https://github.com/networkx/networkx       networkx-3.6.1 (see real_suite.sh)
# Each is installed editable into the benchmark's virtualenv with what its tests import, and the
# command that measures them is printed. The images (orchestrate/postgres:15, orchestrate/redis:7)
# come from `make images`.
set -euo pipefail
venv=.venv
args=()
for spec in "$@"; do
    case "$spec" in
        VENV=*) venv=${spec#VENV=} ;;
        *) args+=("$spec") ;;
    esac
done
flags=()
for spec in "${args[@]}"; do
    name=${spec%%=*} checkout=${spec#*=}
    case "$name" in
        sqlalchemy)
            [ -f "$checkout/lib/sqlalchemy/__init__.py" ] || { echo "public_suites.sh: $checkout is not a SQLAlchemy checkout" >&2; exit 4; }
            # without its C extensions (pure Python), as the figures were taken
            DISABLE_SQLALCHEMY_CEXT=1 "$venv/bin/pip" install --quiet -e "$checkout" 'psycopg[binary]'
            flags+=("--public sqlalchemy=$checkout") ;;
        redis-py)
            [ -f "$checkout/redis/__init__.py" ] || { echo "public_suites.sh: $checkout is not a redis-py checkout" >&2; exit 4; }
            "$venv/bin/pip" install --quiet -e "$checkout" packaging pytest-asyncio pytest-timeout ujson
            flags+=("--public redis-py=$checkout") ;;
        networkx)
            bash "$(dirname "$0")/real_suite.sh" "$checkout" "$venv" > /dev/null
            flags+=("--real $checkout") ;;
        *) echo "public_suites.sh: unknown suite $name (sqlalchemy, redis-py, networkx)" >&2; exit 4 ;;
    esac
done
echo "measure them, with every other target of issue 18, with:"
echo "  $venv/bin/python benchmarks/run.py --issue18 ${flags[*]}"
echo "  $venv/bin/python benchmarks/scale.py --agents auto    # 100,000 tests"
