# Stand-in for apache/superset:6.1.0 where no image registry answers: Debian bookworm's Python 3.11 with
# Superset 6.1.0 and the versions of bi/uv.lock (superset-requirements.txt) in /app/.venv, user superset,
# home /app/superset_home, as in the official image.
FROM localhost/renewal-standin-debian:bookworm
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
COPY superset-requirements.txt /tmp/requirements.txt
RUN python3 -m venv /app/.venv \
 && /app/.venv/bin/pip install --no-cache-dir uv==0.13.9 \
 && /app/.venv/bin/uv pip install --python /app/.venv/bin/python --no-cache -r /tmp/requirements.txt \
 && useradd --no-log-init --uid 1000 --user-group --home-dir /app/superset_home --create-home superset \
 && chown -R superset:superset /app
ENV PATH=/app/.venv/bin:$PATH SUPERSET_HOME=/app/superset_home
WORKDIR /app
USER superset
CMD ["gunicorn", "--bind", "0.0.0.0:8088", "superset.app:create_app()"]
