# The project's Airflow image (docker-compose.yml builds it as fj-renewal-airflow:$RENEWAL_VERSION): Python 3.11,
# the locked production dependencies (uv.lock, no dev group) and only the folders the DAGs need, so nothing
# else of the build context (.env, warehouse, data) can reach a layer.
FROM python:3.11.11-slim-bookworm
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN pip install --no-cache-dir uv==0.13.9 \
 && useradd --no-log-init --uid 50000 --gid 0 --home-dir /opt/renewal --no-create-home renewal \
 && mkdir -p /opt/renewal /data /warehouse /exports /opt/airflow/logs /opt/airflow/mail \
 && chown -R 50000:0 /opt/renewal /data /warehouse /exports /opt/airflow
USER 50000
WORKDIR /opt/renewal
ENV UV_NO_CACHE=1 UV_COMPILE_BYTECODE=1 PATH=/opt/renewal/.venv/bin:$PATH
COPY --chown=50000:0 pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
COPY --chown=50000:0 dags ./dags
COPY --chown=50000:0 pipeline ./pipeline
COPY --chown=50000:0 ingest ./ingest
COPY --chown=50000:0 expectations ./expectations
COPY --chown=50000:0 publish ./publish
COPY --chown=50000:0 mock_feed ./mock_feed
COPY --chown=50000:0 dbt_project ./dbt_project
# the dbt task starts from this parse (target/partial_parse.msgpack), not from a full one every run
RUN uv sync --frozen --no-dev
WORKDIR /opt/renewal/dbt_project
RUN dbt parse --profiles-dir . --quiet
WORKDIR /opt/renewal
