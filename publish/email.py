"""Optional e-mail delivery of each centre's reminder files, through Airflow's SMTP support (SmtpHook).

Recipients per supervising centre come from REMINDER_RECIPIENTS (JSON: {"350100": "a@x.cn, b@x.cn", …}) or the
Airflow Variable `reminder_recipients`; the server from the Airflow connection `smtp_default`. With no
recipients configured the step is skipped and says so. Each centre's mail for a date goes out once: the
delivery log beside the ledger remembers what was sent, so a rerun for the same date sends nothing twice.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import logging
import os
from pathlib import Path

from ingest.warehouse import open_duckdb
from pipeline.settings import env_or_variable

log = logging.getLogger(__name__)

SMTP_CONN_ID = "smtp_default"
DELIVERY_DDL = """CREATE TABLE IF NOT EXISTS email_deliveries (
    centre VARCHAR NOT NULL, export_date DATE NOT NULL, recipients VARCHAR, reminders INTEGER,
    PRIMARY KEY (centre, export_date))"""


def _centre_and_stem(manifest: dict, code: str, as_of: dt.date) -> tuple[str, str]:
    """(centre name, file stem) of the centre's workbook and CSV, as the export named them in its manifest
    (`<code>_<name>_续期提醒_<D>`): the mail sends those files, under the name they carry."""
    prefix, suffix = f"{code}_", f"_续期提醒_{as_of.isoformat()}.xlsx"
    for path in manifest["files"]:
        if path.startswith(prefix) and path.endswith(suffix) and "/" not in path:
            stem = path.removesuffix(".xlsx")
            return path.removeprefix(prefix).removesuffix(suffix), stem
    raise FileNotFoundError(f"the export of {as_of} lists no workbook for centre {code} (manifest.json)")


def mail_sender() -> str:
    """The From address of every mail the pipeline sends (reminders and alerts): ALERT_FROM. The SMTP
    connection needs none of its own, and an office's SMTP URL seldom carries one."""
    return os.environ.get("ALERT_FROM") or "renewal-pipeline@localhost"


def recipients() -> dict[str, list[str]]:
    """Each centre's addresses: REMINDER_RECIPIENTS, else the Variable `reminder_recipients` (JSON object)."""
    raw = env_or_variable("REMINDER_RECIPIENTS", "reminder_recipients")
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"REMINDER_RECIPIENTS (or the Variable reminder_recipients) is not JSON: {exc}; "
            'expected e.g. {"350100": "a@example.gov.cn, b@example.gov.cn"}'
        ) from exc
    if not isinstance(parsed, dict) or not all(isinstance(v, str) for v in parsed.values()):
        raise ValueError(
            "REMINDER_RECIPIENTS (or the Variable reminder_recipients) must map centre codes to "
            'comma-separated addresses, e.g. {"350100": "a@example.gov.cn"}'
        )
    return {
        code: [a.strip() for a in addresses.split(",") if a.strip()] for code, addresses in parsed.items()
    }


def send_reminder_emails(
    exports_dir: Path,
    as_of: dt.date,
    ledger_db: Path,
    to: dict[str, list[str]] | None = None,
    smtp_conn_id: str = SMTP_CONN_ID,
) -> dict:
    to = recipients() if to is None else to
    if not to:
        log.info(
            "e-mail delivery skipped: no recipients (REMINDER_RECIPIENTS or Variable reminder_recipients)"
        )
        return {"skipped": True}
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    folder = exports_dir / as_of.isoformat()
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    con = open_duckdb(ledger_db)
    sent: dict[str, int] = {}
    try:
        con.execute(DELIVERY_DDL)
        done = {
            r[0]
            for r in con.execute(
                "SELECT centre FROM email_deliveries WHERE export_date = ?", [as_of]
            ).fetchall()
        }
        with SmtpHook(smtp_conn_id=smtp_conn_id) as hook:
            for code, addresses in sorted(to.items()):
                count = manifest["by_centre"].get(code, 0)
                # a centre with work on its list (今日须办) but no new reminder still gets its workbook
                work = manifest.get("work_items", {}).get(code, 0)
                if code in done or not addresses or count + work == 0:
                    continue
                subject, body, stem = _centre_mail(manifest, code, as_of, count, work)
                hook.send_email_smtp(
                    to=addresses,
                    from_email=mail_sender(),
                    subject=subject,
                    html_content=body,
                    files=[str(folder / f"{stem}.xlsx"), str(folder / f"{stem}.csv")],
                )
                con.execute(
                    "INSERT INTO email_deliveries VALUES (?, ?, ?, ?)",
                    [code, as_of, ", ".join(addresses), count],
                )
                sent[code] = count
    finally:
        con.close()
    log.info("e-mailed reminders to %d centres: %s", len(sent), sent)
    return {"sent": sent}


def _centre_mail(manifest: dict, code: str, as_of: dt.date, count: int, work: int) -> tuple[str, str, str]:
    """(subject, HTML body, file stem of the attachments) of centre `code`'s mail for D: `count` reminders sent
    today, `work` institutions on its work list."""
    feed = manifest.get("feed_freshness") or {}
    # the workbook's first line when the feed has stopped changing (R-FEED): the mail says it first too
    notice = (
        f"<p><b>{html.escape(feed['notice_zh'])}</b></p>" if feed.get("status", "fresh") != "fresh" else ""
    )
    name, stem = _centre_and_stem(manifest, code, as_of)
    body = (
        f"<p>{html.escape(name)}：</p>{notice}<p>{as_of.isoformat()} 今日须办 {work} 个机构，"
        f"新发出备案续期提醒 {count} 条，明细见附件（{html.escape(stem)}.xlsx，首页为“今日须办”；"
        f"提醒清单另见 .csv）。可以申请续期的机构预填的申请表（附件1）和工作总结草稿（附件2）、"
        f"暂不能申请的机构的告知书在导出目录的“申请材料”文件夹中。</p>"
        f"<p>福建省职业技能鉴定指导中心 续期数据平台</p>"
    )
    return f"【备案续期提醒】{name} {as_of.isoformat()}（{count}条）", body, stem
