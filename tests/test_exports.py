"""Reminder exports (renewal_reminders): exactly the reminders due and not yet sent, once each, byte-identical
on rerun, pre-filled forms that match the source data, and delivery by e-mail through a real SMTP server."""

import datetime as dt
import json
import shutil
import time
from dataclasses import replace

import duckdb
import pytest
from docx import Document
from openpyxl import load_workbook

from pipeline import steps
from publish.exports import NotPublishedForDate
from publish.workbook import centre_workbook
from tests.helpers import AS_OF, DBT_SKIP_TESTS, dbt_build, file_digests, private_copy, reminder_row

NEXT_DAY = AS_OF + dt.timedelta(days=1)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, built):
    """A copy of the built warehouse, published for D and exported once."""
    settings = private_copy(built, tmp_path_factory.mktemp("exported"))
    steps.publish(AS_OF, settings=settings)
    manifest = steps.export(AS_OF, settings=settings)
    return settings, manifest


def reminders_due(settings, as_of):
    """(institution_id, reminder_type, supervising_centre, expires_on, institution_name) of the reminders due."""
    con = duckdb.connect(str(settings.published_db), read_only=True)
    rows = con.execute(
        "SELECT institution_id, reminder_type, supervising_centre, expires_on, institution_name "
        "FROM marts.reminders WHERE first_due_on <= ?",
        [as_of],
    ).fetchall()
    con.close()
    return rows


def reminder_sheets(wb):
    """The per-type sheets of today's reminders: after 今日须办, (the province's roll-up,) 预警 and 汇总."""
    assert wb.sheetnames[0] == "今日须办"
    assert "预警" in wb.sheetnames
    return wb.worksheets[wb.sheetnames.index("汇总") + 1 :]


def exported_rows(folder):
    """(institution name, reminder type label, centre) of every reminder row of every centre workbook."""
    rows = []
    for path in sorted(folder.glob("*_续期提醒_*.xlsx")):
        wb = load_workbook(path)
        for sheet in reminder_sheets(wb):
            header = [c.value for c in sheet[1]]
            assert header[:2] == ["机构名称", "机构备案号"]
            assert sheet.freeze_panes == "A2"
            assert sheet.auto_filter.ref
            for r in sheet.iter_rows(min_row=2, values_only=True):
                assert r[header.index("提醒类型")] == sheet.title
                assert isinstance(r[header.index("应提醒起始日期")], dt.datetime)  # real dates
                rows.append((r[0], sheet.title, path.name.split("_")[0]))
    return rows


@pytest.mark.slow
def test_export_holds_exactly_the_reminders_due_and_not_yet_sent(exported):
    settings, manifest = exported
    due = reminders_due(settings, AS_OF)
    assert due
    assert manifest["reminders"] == len(due)
    folder = settings.exports_dir / AS_OF.isoformat()
    rows = exported_rows(folder)
    assert sorted((r[0], r[2]) for r in rows) == sorted((d[4], d[2]) for d in due)
    for path in folder.glob("*_续期提醒_*.csv"):
        assert path.read_bytes().startswith(b"\xef\xbb\xbf")
        assert (
            len(path.read_text(encoding="utf-8-sig").strip().splitlines()) - 1
            == manifest["by_centre"][path.name.split("_")[0]]
        )
    con = duckdb.connect(str(settings.reminder_ledger_db), read_only=True)
    ledger = con.execute(
        "SELECT institution_id, reminder_type, period_expires_on, sent_on FROM reminder_ledger"
    ).fetchall()
    con.close()
    assert sorted((i, t, e) for i, t, e, _ in ledger) == sorted((d[0], d[1], d[3]) for d in due)
    assert {s for *_, s in ledger} == {AS_OF}
    files = file_digests(folder)
    listed = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["files"]
    assert set(listed) | {"manifest.json"} == set(files)
    assert all(files[p] == h for p, h in listed.items())


@pytest.mark.slow
def test_rerun_is_byte_identical_and_the_next_day_repeats_nothing(exported, tmp_path):
    settings, _ = exported
    folder = settings.exports_dir / AS_OF.isoformat()
    before = file_digests(folder)
    time.sleep(1.1)
    steps.export(AS_OF, settings=settings)
    assert file_digests(folder) == before

    # the next day: marts as of D+1, then its export leaves out everything already sent
    later = replace(settings, warehouse_dir=tmp_path / "warehouse", exports_dir=settings.exports_dir)
    later.warehouse_dir.mkdir()
    shutil.copy(settings.warehouse_db, later.warehouse_db)
    shutil.copy(settings.reminder_ledger_db, later.reminder_ledger_db)
    shutil.copy(settings.published_db, later.published_db)
    with pytest.raises(NotPublishedForDate):
        steps.export(NEXT_DAY, settings=later)  # nothing published for D+1 yet
    assert dbt_build(later, NEXT_DAY, *DBT_SKIP_TESTS).returncode == 0
    steps.publish(NEXT_DAY, settings=later)
    manifest = steps.export(NEXT_DAY, settings=later)
    sent_before = {(d[0], d[1], d[3]) for d in reminders_due(settings, AS_OF)}
    due_now = reminders_due(later, NEXT_DAY)
    expected = [d for d in due_now if (d[0], d[1], d[3]) not in sent_before]
    assert manifest["reminders"] == len(expected)
    assert len(due_now) > len(expected)  # most reminders still hold, and are not repeated


@pytest.mark.slow
def test_prefilled_forms_match_the_source_data(exported):
    settings, manifest = exported
    folder = settings.exports_dir / AS_OF.isoformat()
    annex1 = sorted(folder.glob("*_申请材料/*/附件1_*.xlsx"))
    annex2 = sorted(folder.glob("*_申请材料/*/附件2_*.docx"))
    notices = sorted(folder.glob("*_申请材料/*/告知_*.docx"))
    assert len(annex1) == len(annex2) == manifest["application_packs"] > 0
    assert len(annex1) + len(notices) == manifest["institutions"]
    con = duckdb.connect(str(settings.warehouse_db), read_only=True)
    checked_plans = 0
    for path in annex1:
        iid = path.stem.rsplit("_", 1)[1]
        inst = con.execute(
            """SELECT institution_name, registration_no, expires_on, address, contact_person
                              FROM staging.stg_feed__institutions WHERE institution_id = ?""",
            [iid],
        ).fetchone()
        ws = load_workbook(path).active
        cells = {r[0]: r for r in ws.iter_rows(values_only=True) if r and r[0]}
        assert cells["机构名称"][1] == inst[0]
        assert cells["机构备案号"][1] == inst[1]
        assert cells["机构备案号"][6].date() == inst[2]
        assert cells["备案地址"][1] == inst[3]
        assert cells["评价业务联系人"][1] == inst[4]
        # the six most recent counting plans whose certificates all answer the lookup, straight from staging
        expected = con.execute(
            """
            SELECT p.plan_no, p.passed FROM staging.stg_feed__plans p
            JOIN staging.stg_feed__institutions i USING (institution_id)
            WHERE p.institution_id = ? AND p.status = 'completed'
              AND p.assessment_date BETWEEN i.registered_on AND least(i.expires_on, ?)
              AND p.passed = (SELECT count(*) FROM intermediate.int_certificates_with_latest_lookup c
                              WHERE c.plan_no = p.plan_no AND c.is_queryable)
              AND NOT EXISTS (SELECT 1 FROM intermediate.int_certificates_with_latest_lookup c
                              WHERE c.plan_no = p.plan_no AND NOT c.is_queryable)
            ORDER BY p.assessment_date DESC, p.plan_no DESC LIMIT 6""",
            [iid, AS_OF],
        ).fetchall()
        header = next(i for i, r in enumerate(ws.iter_rows(values_only=True), 1) if r[0] == "序号")
        listed = [
            (r[1], r[6])
            for r in ws.iter_rows(min_row=header + 1, max_row=header + 6, values_only=True)
            if r[1]
        ]
        assert listed == expected
        checked_plans += len(listed)
    assert checked_plans > 0
    for path in annex2:
        iid = path.stem.rsplit("_", 1)[1]
        text = "\n".join(p.text for p in Document(path).paragraphs)
        batches, name = con.execute(
            """SELECT batch_count, institution_name FROM marts.renewal_eligibility
                                       WHERE institution_id = ?""",
            [iid],
        ).fetchone()
        assert f"机构名称：{name}" in text
        assert f"共开展职业技能等级认定{batches}批次" in text
        assert "一、开展职业技能等级认定的基本情况" in text
        assert "三、下阶段工作" in text
    con.close()


@pytest.mark.slow
def test_email_to_each_centre_once_through_a_real_smtp_server(exported, monkeypatch):
    from aiosmtpd.controller import Controller

    settings, manifest = exported
    received = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            received.append(envelope)
            return "250 OK"

    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        # as docker-compose's SMTP_URL gives it: no sender in the connection, the pipeline names its own
        monkeypatch.setenv(
            "AIRFLOW_CONN_SMTP_DEFAULT", f"smtp://127.0.0.1:{port}?disable_ssl=true&disable_tls=true"
        )
        monkeypatch.setenv("ALERT_FROM", "renewal@example.org")
        centres = [c for c, n in manifest["by_centre"].items() if n][:2]
        monkeypatch.setenv(
            "REMINDER_RECIPIENTS", "{" + ", ".join(f'"{c}": "c{c}@example.org"' for c in centres) + "}"
        )
        result = steps.email(AS_OF, settings=settings)
        again = steps.email(AS_OF, settings=settings)
    finally:
        controller.stop()
    assert set(result["sent"]) == set(centres)
    assert again["sent"] == {}
    assert sorted(e.rcpt_tos[0] for e in received) == sorted(f"c{c}@example.org" for c in centres)
    assert {e.mail_from for e in received} == {"renewal@example.org"}
    body = received[0].content.decode()
    assert "续期提醒" in body or "=?utf-8?" in body
    assert body.count("filename") >= 2  # the workbook and the CSV are attached


def test_workbook_bytes_do_not_depend_on_the_clock():
    row = reminder_row()
    centres = {"350100": "福州市职业技能鉴定指导中心"}
    first = centre_workbook("350100", dt.date(2026, 11, 25), [], [], [row], centres=centres)
    time.sleep(1.1)
    assert centre_workbook("350100", dt.date(2026, 11, 25), [], [], [row], centres=centres) == first
    assert centre_workbook("350100", dt.date(2026, 11, 26), [], [], [row], centres=centres) != first


@pytest.mark.slow
def test_workbook_renders_with_chinese_text_in_libreoffice(exported, tmp_path):
    """LibreOffice headless (Debian packages; .ci/run installs them) prints a centre's workbook to PDF and PNG:
    the Chinese text is there as text (fonts found), and the page renders."""
    import shutil as sh
    import subprocess

    from tests.helpers import require_system_tool

    soffice, pdftotext, pdftoppm = (require_system_tool(t) for t in ("soffice", "pdftotext", "pdftoppm"))
    settings, manifest = exported
    code = next(c for c, n in manifest["by_centre"].items() if n)
    book = next((settings.exports_dir / AS_OF.isoformat()).glob(f"{code}_*_续期提醒_*.xlsx"))
    sh.copy(book, tmp_path / "centre.xlsx")
    subprocess.run(
        [
            soffice,
            "--headless",
            f"-env:UserInstallation=file://{tmp_path}/lo-profile",
            "--convert-to",
            "pdf",
            "--outdir",
            str(tmp_path),
            str(tmp_path / "centre.xlsx"),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    text = subprocess.run(
        [pdftotext, str(tmp_path / "centre.pdf"), "-"], check=True, capture_output=True, text=True
    ).stdout
    centre_name = book.name.split("_")[1]
    assert centre_name in text
    assert "今日须办" in text
    assert "今日发出提醒数" in text
    subprocess.run(
        [
            pdftoppm,
            "-png",
            "-r",
            "80",
            "-f",
            "1",
            "-l",
            "1",
            str(tmp_path / "centre.pdf"),
            str(tmp_path / "page"),
        ],
        check=True,
    )
    png = next(tmp_path.glob("page*.png"))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 5000


@pytest.mark.slow
def test_forms_made_by_worker_processes_equal_forms_made_in_process(exported):
    """A province's reminders are made by one worker process per core (publish.forms.build_forms): the same
    bytes, in the same order, as made in the task's own process."""
    from publish.exports import form_institutions
    from publish.forms import build_forms

    settings, _ = exported
    con = duckdb.connect(str(settings.published_db), read_only=True)
    ids = [
        r[0]
        for r in con.execute(
            "SELECT institution_id FROM marts.renewal_eligibility ORDER BY 1 LIMIT 7"
        ).fetchall()
    ]
    con.close()
    institutions = form_institutions(settings.published_db, [{"institution_id": iid} for iid in ids])
    in_process = build_forms(institutions, AS_OF, workers=1)
    assert build_forms(institutions, AS_OF, workers=2) == in_process
    assert len(in_process) == 7
    assert len(set(in_process)) == 7


@pytest.mark.slow
def test_forms_from_the_cache_give_the_same_export_and_are_counted(exported):
    """The export with every form from the cache (a rerun of D) and with an empty cache: the same files, the
    same manifest; raw.run_metrics says how many forms were made and how many came from the cache."""
    settings, manifest = exported
    folder = settings.exports_dir / AS_OF.isoformat()
    forms = manifest["application_packs"] * 2 + manifest["cannot_apply_notices"]
    assert forms
    assert settings.form_cache_dir.exists()

    def counted() -> dict[str, int]:
        con = duckdb.connect(str(settings.warehouse_db), read_only=True)
        rows = con.execute(
            "SELECT metric, value FROM raw.run_metrics WHERE step = 'export_reminders' AND subject = 'forms'"
        ).fetchall()
        con.close()
        return dict(rows)

    full = steps.export(AS_OF, settings=settings)
    from_full_cache = file_digests(folder)
    assert (full["forms_built"], full["forms_from_cache"]) == (0, forms)
    assert counted()["forms_from_cache"] == forms
    assert counted()["forms_built"] == 0

    shutil.rmtree(settings.form_cache_dir)
    empty = steps.export(AS_OF, settings=settings)
    assert (empty["forms_built"], empty["forms_from_cache"]) == (forms, 0)
    assert counted()["forms_built"] == forms
    assert file_digests(folder) == from_full_cache
