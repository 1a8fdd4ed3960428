# Apache Superset 6.1.0 with the PostgreSQL driver and the dashboards bundle (bi/dashboards/), imported on
# every start by bi/import_dashboards.py (docker-compose.yml, service superset).
FROM apache/superset:6.1.0
USER root
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN . /app/.venv/bin/activate \
 && uv pip install --no-cache psycopg2-binary==2.9.10 cachetools==8.0.2
COPY bi/superset_config.py bi/import_dashboards.py bi/access.py /app/bi/
COPY bi/dashboards /app/bi/dashboards
# the centres' roles are made from the dbt seed (bi/access.py reads it from beside bi/)
COPY dbt_project/seeds/supervising_centres.csv /app/dbt_project/seeds/
USER superset
