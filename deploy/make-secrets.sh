#!/usr/bin/env bash
# Writes the secrets deploy/compose.yaml mounts, into deploy/secrets/ (or $1), and prints the
# admin API key once. Refuses to overwrite existing secrets unless --force.
#   deploy/make-secrets.sh [DIR] [--force]
# The directory is 0700 (only its owner reaches the files on this machine); the files are 0644
# because compose bind-mounts them as they are and the containers read them as uid 10001 (nova)
# and 999 (postgres).
set -euo pipefail
dir="$(dirname "$0")/secrets"
force=0
for a in "$@"; do
  case "$a" in
    --force) force=1 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    -*) echo "make-secrets: unknown option $a" >&2; exit 2 ;;
    *) dir=$a ;;
  esac
done
mkdir -p "$dir"
chmod 0700 "$dir"
if [ "$force" = 0 ] && [ -e "$dir/db_password" ]; then
  echo "make-secrets: $dir/db_password exists (use --force to replace every secret)" >&2
  exit 2
fi
random() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
password=$(random 24)
key="nova_admin_$(random 20)"
umask 022
printf '%s' "$password" >"$dir/db_password"
printf 'postgres://nova:%s@db:5432/nova\n' "$password" >"$dir/nova_store_url"
cat >"$dir/nova-host.json" <<JSON
{
  "listen": { "host": "0.0.0.0", "port": 8787 },
  "api_keys": [
    { "id": "admin", "principal": "admin", "role": "admin", "sha256": "$(printf %s "$key" | sha256sum | cut -d' ' -f1)" }
  ],
  "shutdown_grace_seconds": 20
}
JSON
chmod 0644 "$dir/db_password" "$dir/nova_store_url" "$dir/nova-host.json"
echo "secrets written to $dir"
echo "admin API key (shown once): $key"
