#!/usr/bin/env bash
# The Debian packages the tests use, installed when missing (as root, or with sudo): PostgreSQL for the BI
# publication, LibreOffice (calc and writer, with CJK fonts) and poppler to render workbooks and forms,
# Chromium to open the Superset dashboards (Playwright drives it; its own browser download is unreachable).
# `make test` runs this first, so that on a fresh machine `make test` is the whole set-up.
set -euo pipefail
packages=(postgresql libreoffice-calc-nogui libreoffice-writer-nogui fonts-noto-cjk poppler-utils chromium)
missing=0
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing=1
for tool in soffice pdftoppm pdftotext pdfinfo fc-list chromium; do command -v "$tool" >/dev/null || missing=1; done
[ "$missing" = 1 ] || [ -n "$(fc-list :lang=zh 2>/dev/null)" ] || missing=1  # CJK fonts for the renders
# writer, for the .docx forms: its filter lives in its own package
[ "$missing" = 1 ] || dpkg -s libreoffice-writer-nogui >/dev/null 2>&1 || dpkg -s libreoffice-writer >/dev/null 2>&1 || missing=1
[ "$missing" = 0 ] && exit 0
if [ "$(id -u)" = 0 ]; then sudo_if_needed=""; elif command -v sudo >/dev/null; then sudo_if_needed=sudo; else
    echo "missing Debian packages (${packages[*]}); run as root or install them" >&2; exit 1
fi
echo "installing Debian packages: ${packages[*]} …"
$sudo_if_needed apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo_if_needed apt-get install -y -qq "${packages[@]}" >/dev/null
