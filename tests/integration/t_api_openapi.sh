#!/usr/bin/env bash
# doc/openapi.yaml parses (python3-yaml), is OpenAPI 3, and lists exactly the routes the
# server registers (`envrun serve --list-routes`, printed from the live route table);
# every operation documents 401 and its error responses carry the Error schema; man
# envrun-serve.8 names every route too.
source "$(dirname "$0")/lib.sh"
python3 -c 'import yaml' 2>/dev/null || { fail "python3-yaml is not installed (scripts/deps.sh)"; exit 1; }
SPEC=$SRC_DIR/doc/openapi.yaml
MAN=$SRC_DIR/man/envrun-serve.8

capture timeout 10 "$ENVRUN" --root "$T/agent" serve --list-routes
ROUTES=$(sort <<<"$OUT")
assert_eq "serve --list-routes exits 0" 0 "$RC"
assert_match "the server has routes" "$(wc -l <<<"$ROUTES")" '^[1-9][0-9]+$'
assert_line_match "GET /v1/instances/{id} is one" "$ROUTES" '^GET /v1/instances/\{id\}$'

cat >"$T/spec_routes.py" <<'PY'
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
assert str(d["openapi"]).startswith("3."), "not OpenAPI 3"
assert d["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
for path, item in d["paths"].items():
    for method, op in item.items():
        if method == "parameters":
            continue
        print(method.upper(), path)
        codes = op.get("responses", {})
        if "401" not in codes:
            print("MISSING-401", method.upper(), path)
        if not any(c.startswith("2") for c in codes):
            print("MISSING-2XX", method.upper(), path)
PY
capture python3 "$T/spec_routes.py" "$SPEC"
DOC=$(grep -v '^MISSING' <<<"$OUT" | sort)
assert_eq "openapi.yaml parses" 0 "$RC"
assert_eq "openapi.yaml lists exactly the server's routes" "$ROUTES" "$DOC"
assert_eq "every operation documents 401 and a 2xx" "" "$(grep '^MISSING' <<<"$OUT")"
if [[ $ROUTES != "$DOC" ]]; then
  fail "route difference" "$(diff <(echo "$ROUTES") <(echo "$DOC"))"
fi

missing=""
while read -r m p; do
  grep -qF -- "$(sed 's/-/\\-/g' <<<"$p")" "$MAN" || missing+=" $m $p"
done <<<"$ROUTES"
assert_eq "envrun-serve.8 names every route" "" "$missing"
check "envrun-serve.8 renders" sh -c "man -l '$MAN' >/dev/null 2>&1 || groff -man -Tutf8 '$MAN' >/dev/null"
