#!/bin/bash
# Stand-ins for the registry images docker-compose.yml builds on (python:3.11.11-slim-bookworm,
# postgres:16.4-bookworm, apache/superset:6.1.0), made from Debian packages with mmdebstrap and tagged under the
# same names, for a machine or office intranet that reaches a Debian mirror and PyPI but no image registry.
# How each differs from the official image: README, "Production without an image registry".
#   deploy/standin/build.sh [podman|docker]
set -euo pipefail
engine=${1:-podman}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# a TLS-intercepting proxy's CA must be trusted inside the builds too: the host's bundle goes into the base
ca=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "stand-in base: Debian bookworm (mmdebstrap)"
mmdebstrap --quiet --variant=minbase --include=ca-certificates,python3,python3-venv,python3-pip,python-is-python3 \
  --customize-hook="cp '$ca' \"\$1/etc/ssl/certs/ca-certificates.crt\"" \
  bookworm "$work/debian.tar"
"$engine" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
  --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
  --change 'ENV REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt' \
  --change 'CMD ["bash"]' \
  "$work/debian.tar" localhost/renewal-standin-debian:bookworm >/dev/null

cp "$here"/*.Dockerfile "$here"/postgres-entrypoint.sh "$work/"
# Superset with exactly the versions `make bi` runs (bi/uv.lock)
# (less Playwright, which only the browser checks of `make dashboards` use)
uv=(uv); command -v uv >/dev/null || uv=(python3.11 -m uv)  # as the Makefile finds it
(cd "$root/bi" && "${uv[@]}" export --frozen --no-hashes --no-emit-project --no-dev) | grep -v '^playwright==' \
  > "$work/superset-requirements.txt"

# podman writes OCI images unless told otherwise, and OCI has no SHELL or HEALTHCHECK
format=(); [ "$engine" = podman ] && format=(--format docker)
build() {
  echo "stand-in $2"
  "$engine" build --quiet "${format[@]}" -f "$work/$1" -t "$2" "$work" >/dev/null
}
build python.Dockerfile docker.io/library/python:3.11.11-slim-bookworm
build postgres.Dockerfile docker.io/library/postgres:16.4-bookworm
build superset.Dockerfile docker.io/apache/superset:6.1.0
echo "stand-in images built"
