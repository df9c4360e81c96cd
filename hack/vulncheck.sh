#!/usr/bin/env bash
# `make vulncheck`: govulncheck against an offline vulnerability database built
# from a pinned golang.org/x/vulndb module version (served by the Go module
# proxy; its data/osv holds the OSV entries, its cmd/indexdb writes the
# database layout `govulncheck -db file://DIR` reads). The database is cached
# under bin/vulndb/<version>; bump VULNDB_VERSION to refresh it and record the
# version in docs/reliability.md.
set -euo pipefail
vulndb_version=${VULNDB_VERSION:-v0.0.0-20261105234957-e22db6528018}
govulncheck_version=${GOVULNCHECK_VERSION:-v1.8.0}
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/bin"
db="$bin/vulndb/$vulndb_version"
mkdir -p "$bin"

if [[ ! -f "$db/index/db.json" ]]; then
  echo "building the vulnerability database from golang.org/x/vulndb@$vulndb_version into bin/vulndb"
  src=$(cd "$root" && go mod download -json "golang.org/x/vulndb@$vulndb_version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [[ -d "$src/data/osv" ]] || { echo "golang.org/x/vulndb@$vulndb_version has no data/osv" >&2; exit 1; }
  tmp=$(mktemp -d "$bin/vulndb.tmp.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  # indexdb is built inside the vulndb module itself, with that module's own go.sum.
  (cd "$src" && GOFLAGS=-mod=mod go build -o "$tmp/indexdb" ./cmd/indexdb)
  "$tmp/indexdb" -vulns "$src/data/osv" -out "$tmp/db"
  rm -rf "$db" && mkdir -p "$(dirname "$db")" && mv "$tmp/db" "$db"
fi

if [[ ! -x "$bin/govulncheck" ]] || [[ "$(go version -m "$bin/govulncheck" | awk '$1 == "mod" { print $3 }')" != "$govulncheck_version" ]]; then
  GOBIN="$bin" go install "golang.org/x/vuln/cmd/govulncheck@$govulncheck_version"
fi
cd "$root"
echo "govulncheck $govulncheck_version, database golang.org/x/vulndb@$vulndb_version"
"$bin/govulncheck" -db "file://$db" ./...
