"""What both DAGs share: the Asset, the first date, D of a run, the writer pool, retries and the data team's
alerts (a failed task; a feed that stopped changing, R-FEED). It imports Airflow, and nothing here opens a
connection or reads a setting at import time."""

from __future__ import annotations

import datetime as dt
import html
import logging
import os
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pendulum
from airflow.sdk import Asset

from pipeline.settings import NOTICE_DATE, TIMEZONE, as_of_date, env_or_variable

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)

# Published by renewal_daily's `publish` with extra {"as_of": D, "backfill": bool}; starts renewal_reminders.
PUBLISHED_MARTS = Asset("renewal_published_marts")
START_DATE = pendulum.datetime(NOTICE_DATE.year, NOTICE_DATE.month, NOTICE_DATE.day, tz=TIMEZONE)
# renewal_daily's schedule, 06:00 Asia/Shanghai; RENEWAL_DAILY_SCHEDULE=none leaves it to be triggered from
# outside (the bench's resident Airflow; an office that triggers runs through the API).
_SCHEDULE = os.environ.get("RENEWAL_DAILY_SCHEDULE") or "0 6 * * *"
DAILY_SCHEDULE = None if _SCHEDULE.lower() == "none" else _SCHEDULE
ALERT_SMTP_CONN_ID = "smtp_default"

# The scheduler and worker settings that make the daily run's eleven tasks follow each other quickly under a
# resident Airflow (docker-compose.yml sets the same; bench/resident.py measures with them; bench/README.md):
SCHEDULER_TUNING = {
    # the scheduler's loop runs every second, not every 5 (its heartbeat) ...
    "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
    # ... and an idle loop sleeps 0.25 s, not 1 s, before looking for the next task to queue (each loop is a
    # few queries: 0.1 s cost more CPU than it saved on two cores)
    "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.25",
    # a task's supervisor waits in select() at most this long between looks at its task process: at the
    # default 5 s a finished task held its executor slot up to 5 s longer, and the next task waited for it
    "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
}

# Tasks that talk to another system (feed, PostgreSQL, SMTP) retry with exponential backoff; the gate never does.
TRANSIENT: dict[str, Any] = {
    "retries": 3,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=10),
}


def run_as_of(context: Context) -> dt.date:
    """D of a run: its logical date in Asia/Shanghai, or its run_after for a run without one (Airflow 3)."""
    return as_of_date(context.get("logical_date") or context["dag_run"].run_after)


def as_of_macro(logical_date: dt.datetime | None, run_after: dt.datetime) -> str:
    """The same D for templates (the dbt var `as_of`): `{{ renewal_as_of(dag_run.logical_date, dag_run.run_after) }}`."""
    return as_of_date(logical_date or run_after).isoformat()


def is_backfill(context: Context) -> bool:
    """A run that rebuilds history: Airflow's backfill, or a run with conf {"backfill": true} (make backfill)."""
    run = context["dag_run"]
    flagged = (run.conf or {}).get("backfill") or (context.get("params") or {}).get("backfill")
    return str(getattr(run, "run_type", "")).lower().endswith("backfill") or bool(flagged)


def alert_recipients() -> list[str]:
    """The data team's addresses: ALERT_RECIPIENTS, else the Airflow Variable `alert_recipients` (comma-separated).
    A Variable that cannot be read raises (AirflowRuntimeError), never reads as "no recipients"."""
    raw = env_or_variable("ALERT_RECIPIENTS", "alert_recipients")
    return [a.strip() for a in (raw or "").replace(";", ",").split(",") if a.strip()]


def _key_lines(context: Context) -> str:
    """The failed task's error, at most 40 lines of it."""
    error = str(context.get("exception") or "no exception recorded; see the task log")
    lines = error.strip().splitlines()
    return "\n".join(
        lines[:40] + ([f"… ({len(lines) - 40} more lines in the log)"] if len(lines) > 40 else [])
    )


def failure_mail(context: Context) -> tuple[str, str]:
    """Subject and HTML body of a failed task's alert: DAG, task, D, and the error's key lines (for the gate:
    each failed expectation with its count and example keys)."""
    ti = context["ti"]
    as_of = run_as_of(context).isoformat()
    key_lines = _key_lines(context)
    subject = f"[renewal pipeline] FAILED {ti.dag_id}.{ti.task_id} for {as_of}"
    log_url = getattr(ti, "log_url", None)
    body = (
        f"<p>DAG <b>{html.escape(ti.dag_id)}</b>, task <b>{html.escape(ti.task_id)}</b>, as-of date "
        f"<b>{as_of}</b>, run {html.escape(str(context['dag_run'].run_id))}, try {getattr(ti, 'try_number', '?')}.</p>"
        f"<pre>{html.escape(key_lines)}</pre>"
        + (f'<p>Log: <a href="{html.escape(log_url)}">{html.escape(log_url)}</a></p>' if log_url else "")
        + "<p>A failed run publishes nothing: the previous publication stays as it was.</p>"
    )
    # the notifier renders its fields as Jinja templates: keep braces from the error text out of Jinja's way
    return subject, body.replace("{", "&#123;").replace("}", "&#125;")


def on_task_failure(context: Context) -> None:
    """on_failure_callback of every task: the alert goes to the task log (which the Airflow UI shows) always,
    and is e-mailed to the data team through `smtp_default` (Airflow's SmtpNotifier) when recipients are set.
    If the recipients cannot be read, that is logged as an error and the task log is where the alert stays."""
    ti = context["ti"]
    subject, body = failure_mail(context)
    log.error("%s\n%s", subject, _key_lines(context))
    mail_data_team(context, subject, body, f"{ti.dag_id}.{ti.task_id}")


def mail_data_team(context: Context, subject: str, body: str, about: str) -> bool:
    """E-mail an alert to the data team (ALERT_RECIPIENTS, else the Variable `alert_recipients`) from ALERT_FROM
    through `smtp_default`; True when it went out. The caller has logged the alert itself as an error: when the
    recipients cannot be read, or there are none, this logs why no mail went out (`about` names the alert)."""
    from airflow.sdk.exceptions import AirflowRuntimeError

    try:
        to = alert_recipients()
    except AirflowRuntimeError as exc:
        log.error(
            "ALERT NOT E-MAILED for %s: the Variable alert_recipients could not be read (%s); "
            "the alert is the error above, in this task's log",
            about,
            exc,
        )
        return False
    if not to:
        log.warning("%s: no alert e-mailed: set ALERT_RECIPIENTS or the Variable alert_recipients", about)
        return False
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    from publish.email import mail_sender

    SmtpNotifier(
        to=to,
        from_email=mail_sender(),
        subject=subject,
        html_content=body,
        smtp_conn_id=ALERT_SMTP_CONN_ID,
    ).notify(context)
    log.info("alert for %s sent to %d recipients", about, len(to))
    return True


def feed_alert_mail(feed: dict[str, Any], dbt_verdict: dict[str, Any] | None = None) -> tuple[str, str]:
    """Subject and HTML body of the alert for a feed that stopped changing (R-FEED): `feed` is the province's
    row of mart feed_freshness, `dbt_verdict` what `dbt source freshness` said of the same (status, days)."""
    as_of = feed["as_of"].isoformat()
    days = feed["days_unchanged"]
    newest = feed["newest_updated_on"].isoformat() if feed["newest_updated_on"] else "none"
    since = (
        f"unchanged for {days} days (newest update {newest})" if days is not None else "has served nothing"
    )
    subject = f"[renewal pipeline] STALE FEED for {as_of}: 技能人才评价工作网 {since}"
    rows = [
        ("as-of date", as_of),
        ("status", f"{feed['freshness_status']} ({feed['freshness_status_zh']})"),
        ("newest updated_at landed", _shanghai(feed["newest_updated_at"])),
        ("days unchanged", "none" if days is None else str(days)),
        (
            "thresholds",
            f"stale after {feed['warn_after_days']} days, stopped after {feed['error_after_days']}",
        ),
    ]
    if dbt_verdict:
        rows.append(("dbt source freshness", f"{dbt_verdict['status']}, {dbt_verdict['days']:g} days"))
    body = (
        f"<p><b>{html.escape(feed['notice_zh'])}</b></p>"
        "<table>"
        + "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in rows)
        + "</table>"
        "<p>The run published as usual (stale data is still the best there is); every centre's workbook opens "
        "on the notice above and every dashboard shows it. Ask the network (技能人才评价工作网) whether its "
        "data still flows; the thresholds are the freshness of source feed.feed_loads "
        "(dbt_project/models/staging/feed/_feed__sources.yml).</p>"
    )
    # the notifier renders its fields as Jinja templates: keep braces out of Jinja's way
    return subject, body.replace("{", "&#123;").replace("}", "&#125;")


def _shanghai(moment: dt.datetime | None) -> str:
    return moment.astimezone(ZoneInfo(TIMEZONE)).isoformat(sep=" ") if moment else "none"


def alert_stale_feed(
    context: Context, feed: dict[str, Any], dbt_verdict: dict[str, Any] | None, backfill: bool
) -> bool:
    """The data team's alert for a feed that is not fresh (R-FEED): always logged as an error, e-mailed unless
    the run is a backfill (a backfill rebuilds history and tells nobody, as it sends no reminder). True when
    a mail went out."""
    subject, body = feed_alert_mail(feed, dbt_verdict)
    log.error("%s\n%s", subject, feed["notice_zh"])
    if backfill:
        log.warning("%s: a backfill, so no alert e-mailed", subject)
        return False
    return mail_data_team(context, subject, body, f"the feed's freshness on {feed['as_of'].isoformat()}")


DEFAULT_ARGS = {"retries": 0, "on_failure_callback": on_task_failure}
