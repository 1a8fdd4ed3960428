"""Shared settings and the plain-Python steps that the Airflow DAGs call."""
