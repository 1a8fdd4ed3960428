"""The officer's morning: a hand-made dataset, one institution per case, run through the real
pipeline steps (mock feed over HTTP, ingest, dbt, gate, publish, export) for D − 1 and then D = 2026-11-25.

Every institution but one is under 福州 (350100), as in the issue; one is registered directly with the province.
The cases (institution id: what D holds for it):
  I01 expires on D (window open)            I02 grace period ends on D
  I03 review past its 30-working-day limit  I04 review due within 10 working days
  I05 open rectification (不予受理)           I06 occupation change request in the freeze
  I07 four batches (书面说明)                  I08 at risk: window opens in 127 days, 4 batches, a certificate not found
  I09 abandoned (grace ended 2026-10-31)    I10 renewed on 2026-11-10 (province: new 备案函)
  I11 terminated, notified 2026-11-20 (province: report to the ministry)
  I12 nothing to do                         I13 window_opens_soon, first due on D (新增)
  P01 registered with the province, window open
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import subprocess
from pathlib import Path

import pytest
from docx import Document
from openpyxl import load_workbook

from mock_feed.generate import CENTRE_COLUMNS, resident_id_check_digit
from pipeline import steps
from tests.helpers import (
    DBT_SKIP_TESTS,
    RunningFeed,
    dbt_build,
    file_digests,
    make_settings,
    run_pipeline_steps,
)

pytestmark = pytest.mark.slow

D = dt.date(2026, 11, 25)
DAY_BEFORE = D - dt.timedelta(days=1)
FUZHOU, PROVINCE = "350100", "350000"
FUZHOU_NAME = "福州市职业技能鉴定指导中心"
LANDLINE = "0591-87654321"  # a leading 0 that the CSV must keep

# id: (name, centre, registered_on, expires_on, batches, unqueryable certificates)
INSTITUTIONS = {
    "I01": ("福州今日到期职业学校", FUZHOU, "2023-11-26", "2026-11-25", 6, 0),
    "I02": ("福州存续期培训中心", FUZHOU, "2023-09-27", "2026-09-26", 6, 0),
    "I03": ("福州评估超期技工学校", FUZHOU, "2024-01-01", "2026-12-31", 6, 0),
    "I04": ("福州评估将到期技工学校", FUZHOU, "2024-01-01", "2026-12-31", 6, 0),
    "I05": ("福州整改未完成培训学校", FUZHOU, "2024-02-01", "2027-01-31", 6, 0),
    "I06": ("福州职业变更培训中心", FUZHOU, "2024-02-11", "2027-02-10", 6, 0),
    "I07": ("福州批次不足职业学校", FUZHOU, "2024-01-16", "2027-01-15", 4, 0),
    "I08": ("福州预警评价中心", FUZHOU, "2024-07-01", "2027-06-30", 4, 1),
    "I09": ("福州已放弃培训中心", FUZHOU, "2023-09-02", "2026-09-01", 6, 0),
    "I10": ("福州已续期技工学校", FUZHOU, "2023-12-21", "2026-12-20", 6, 0),
    "I11": ("福州终止备案培训中心", FUZHOU, "2024-05-01", "2027-04-30", 6, 0),
    "I12": ("福州无事职业学校", FUZHOU, "2025-06-01", "2028-05-31", 6, 0),
    "I13": ("福州即将开启培训中心", FUZHOU, "2024-03-26", "2027-03-25", 6, 0),
    "P01": ("福建省直属评价中心", PROVINCE, "2024-01-06", "2027-01-05", 6, 0),
}
APPLICATIONS = [  # application_id, institution, received_on, review_result, review_completed_on
    ("XQ03", "I03", "2026-10-08", "", ""),
    ("XQ04", "I04", "2026-10-27", "", ""),
    ("XQ10", "I10", "2026-10-01", "approved", "2026-11-10"),
]


def _serial(iid: str) -> int:
    return {"I": 100, "P": 900}[iid[0]] + int(iid[1:])


def write_dataset(out: Path) -> None:
    institutions, occupations, plans, certificates = [], [], [], []
    for iid, (name, centre, registered, expires, batches, unqueryable) in INSTITUTIONS.items():
        serial = _serial(iid)
        institutions.append(
            {
                "institution_id": iid,
                "name": name,
                "institution_type": "school",
                "registration_no": f"闽技鉴备〔2024〕{serial:04d}号",
                "supervising_centre": centre,
                "region_code": "350102",
                "registered_on": registered,
                "expires_on": expires,
                "cohort": None,
                "status": "voluntarily_terminated" if iid == "I11" else "active",
                "responsible_person": f"负责人{iid}",
                "responsible_phone": "13900000000",
                "contact_person": f"联系人{iid}",
                "contact_phone": LANDLINE if iid == "I01" else "13800000000",
                "email": f"{iid.lower()}@example.org",
                "address": f"福州市鼓楼区测试路{serial}号",
                # the network still changes (P01's record on D − 1), so the workbooks open on their 今日须办
                # table, not on the notice of a feed that stopped changing (R-FEED)
                "updated_at": f"{DAY_BEFORE if iid == 'P01' else registered}T09:00:00+08:00",
            }
        )
        occupations.append(
            {
                "institution_id": iid,
                "occupation_code": "6-18-02-04",
                "occupation_name": "焊工",
                "work_type": "电焊工",
                "registered_on": registered,
                "updated_at": f"{registered}T09:00:00+08:00",
            }
        )
        start = dt.date.fromisoformat(registered)
        for n in range(batches):
            assessed = start + dt.timedelta(days=40 + 60 * n)
            plan_no = f"PJ{assessed.year}{serial:06d}{n:03d}"
            plans.append(
                {
                    "plan_no": plan_no,
                    "institution_id": iid,
                    "occupation_code": "6-18-02-04",
                    "occupation_name": "焊工",
                    "work_type": "电焊工",
                    "level": 4,
                    "assessment_date": assessed.isoformat(),
                    "status": "completed",
                    "candidates": 3,
                    "passed": 2,
                    "certificates_online": True,
                    "updated_at": f"{assessed.isoformat()}T18:00:00+08:00",
                }
            )
            for k in range(2):
                first17 = f"350102199001{(n * 2 + k) % 28 + 1:02d}{serial % 1000:03d}"
                issued = assessed + dt.timedelta(days=5)
                cert = {
                    "certificate_no": f"S1710{35}{serial:06d}{assessed.year % 100:02d}4{n * 2 + k:06d}",
                    "plan_no": plan_no,
                    "institution_id": iid,
                    "occupation_code": "6-18-02-04",
                    "level": 4,
                    "issued_on": issued.isoformat(),
                    "holder_name": "测试持证人",
                    "holder_id_no": first17 + resident_id_check_digit(first17),
                    "updated_at": f"{issued.isoformat()}T10:00:00+08:00",
                }
                if n == 0 and k == 0 and unqueryable:
                    cert["_queryable"] = False
                certificates.append(cert)
    for name, rows in [
        ("institutions", institutions),
        ("registered_occupations", occupations),
        ("plans", plans),
        ("certificates", certificates),
    ]:
        (out / f"{name}.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
        )
    records = out / "centre_records"
    records.mkdir()
    rows_by_kind = {  # the headers are the generator's, CENTRE_COLUMNS
        "renewal_applications": [
            [a, i, r, "true", "false", "", res, done] for a, i, r, res, done in APPLICATIONS
        ],
        "rectification_notices": [["闽鉴整〔2026〕5号", "I05", "2026-05-01", "2026-06-30", ""]],
        "disciplinary_cases": [],
        "terminations": [["I11", "2026-11-20", "自愿终止备案"]],
        "occupation_change_requests": [["BG2026009", "I06", "2026-11-20", "add", "4-10-03-01"]],
    }
    tables = {f"{kind}.csv": (CENTRE_COLUMNS[kind], rows) for kind, rows in rows_by_kind.items()}
    for name, (header, rows) in tables.items():
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        (records / name).write_text(buf.getvalue(), encoding="utf-8")


@pytest.fixture(scope="module")
def officer_day(tmp_path_factory):
    """Exports for D − 1 and then D from the hand-made dataset; yields the settings and D's manifest."""
    root = tmp_path_factory.mktemp("officer")
    data = root / "dataset"
    data.mkdir()
    write_dataset(data)
    feed = RunningFeed(data)
    try:
        settings = make_settings(root, data, feed.url)
        run_pipeline_steps(settings, DAY_BEFORE, data_tests=False)
        steps.quality_gate(DAY_BEFORE, settings=settings)
        steps.publish(DAY_BEFORE, settings=settings)
        steps.export(DAY_BEFORE, settings=settings)
        result = dbt_build(settings, D, *DBT_SKIP_TESTS)
        assert result.returncode == 0, result.stdout[-4000:]
        steps.quality_gate(D, settings=settings)
        steps.publish(D, settings=settings)
        manifest = steps.export(D, settings=settings)
    finally:
        feed.stop()
    return settings, manifest


def folder(settings) -> Path:
    return settings.exports_dir / D.isoformat()


def workbook(settings, code: str):
    return load_workbook(next(folder(settings).glob(f"{code}_*_续期提醒_*.xlsx")))


def table(sheet) -> list[dict]:
    header = [c.value for c in sheet[1]]
    return [dict(zip(header, r, strict=False)) for r in sheet.iter_rows(min_row=2, values_only=True)]


def test_city_workbook_opens_on_todays_work_most_urgent_first(officer_day):
    settings, _ = officer_day
    wb = workbook(settings, FUZHOU)
    assert wb.sheetnames[0] == "今日须办"
    assert wb.sheetnames[1] == "预警"
    rows = table(wb["今日须办"])
    names = [r["机构名称"] for r in rows]
    assert len(names) == len(set(names))  # one row per institution
    inst = {r["机构名称"]: r for r in rows}
    name = {iid: v[0] for iid, v in INSTITUTIONS.items()}
    # today's deadlines first, then the centre's overdue review, then the rest by deadline
    assert names[:3] == [name["I01"], name["I02"], name["I03"]]
    assert [r["紧急程度"] for r in rows[:3]] == ["今日到期", "今日到期", "评估超期"]
    assert inst[name["I01"]]["剩余天数"] == "今日"
    assert inst[name["I01"]]["最早期限"].date() == D
    assert "备案今日到期" in inst[name["I01"]]["待办事项"]
    assert "存续期今日结束" in inst[name["I02"]]["待办事项"]
    assert "续期评估已超期" in inst[name["I03"]]["待办事项"]
    assert "逾期" in inst[name["I03"]]["剩余天数"]
    assert "续期评估期限临近" in inst[name["I04"]]["待办事项"]
    assert "暂停受理" in inst[name["I06"]]["待办事项"]
    assert "续期预警" in inst[name["I08"]]["待办事项"]
    # a reminder's date is named for what it is: the window's opening day is not a 截止日期
    assert "续期申请期开始日期为2026年12月25日" in inst[name["I13"]]["办理事项"]
    assert name["I12"] not in inst
    assert name["P01"] not in inst
    assert name["I10"] not in inst
    assert name["I11"] not in inst
    # a reminder first due on D is 新增; one sent on D − 1 stays listed, unmarked
    assert inst[name["I13"]]["新增"] == "新增"
    assert inst[name["I01"]]["新增"] in ("", None)
    # coloured by urgency: today's deadlines and overdue reviews differ from the rest
    sheet = wb["今日须办"]
    colours = [sheet.cell(row=n, column=1).fill.fgColor.rgb for n in (2, 4, len(rows) + 1)]
    assert len(set(colours)) == 3
    # dates are real date cells shown as 2026年11月25日
    deadline_col = [c.value for c in sheet[1]].index("最早期限") + 1
    assert sheet.cell(row=2, column=deadline_col).number_format == 'yyyy"年"m"月"d"日"'
    # the contact is there, with the notice's wording
    assert LANDLINE in inst[name["I01"]]["评价业务联系人"]


def test_verdict_shown_with_the_stage_and_next_steps_follow_from_it(officer_day):
    settings, _ = officer_day
    wb = workbook(settings, FUZHOU)
    conditions = "续期条件（截至2026年11月25日）"
    rows = {r["机构名称"]: r for r in table(wb["今日须办"])}
    abandoned = rows[INSTITUTIONS["I09"][0]]
    assert abandoned["当前阶段"] == "视为自动放弃续期"
    assert "符合续期条件" not in abandoned[conditions]
    for wbook in (wb, workbook(settings, PROVINCE)):
        for sheet in wbook.worksheets:
            if sheet.max_row < 2 or not {"当前阶段", conditions} <= {c.value for c in sheet[1]}:
                continue
            for r in table(sheet):
                if r["当前阶段"] in ("视为自动放弃续期", "已终止备案", "续期未通过", "已续期"):
                    assert r[conditions] != "符合续期条件", (sheet.title, r)
    assert "整改" in rows[INSTITUTIONS["I05"][0]]["下一步工作（致本中心）"]
    assert "不予受理" in rows[INSTITUTIONS["I05"][0]]["转告机构的提示"]
    assert "书面说明" in rows[INSTITUTIONS["I07"][0]]["下一步工作（致本中心）"]
    assert "暂停受理" in rows[INSTITUTIONS["I06"][0]]["下一步工作（致本中心）"]
    assert rows[INSTITUTIONS["I07"][0]]["下一步工作（致本中心）"].startswith("通知该机构")
    # the reminder sheets: the window-opens-soon date is the window's opening date, first_due_on its own label
    soon = wb["续期申请期即将开启"]
    header = [c.value for c in soon[1]]
    assert "续期申请期开始日期" in header
    assert "应提醒起始日期" in header
    assert "截止日期" not in header
    assert "机构备案号" in header
    assert "备案到期时间" in header
    assert "评价业务负责人" in header
    assert "机构编号" not in header  # a name, not an internal id, where a person reads


def test_warning_sheet_says_why_and_what_would_fix_it(officer_day):
    settings, _ = officer_day
    rows = table(workbook(settings, FUZHOU)["预警"])
    assert [r["机构名称"] for r in rows] == [INSTITUTIONS["I08"][0]]
    warning = rows[0]
    assert warning["续期申请期开始日期"].date() == dt.date(2027, 4, 1)
    assert warning["尚需批次数"] == 2
    assert "不足6批次" in warning["预警原因"]
    assert "证书" in warning["预警原因"]
    assert "尚需2批次" in warning["补救措施"]
    assert "1张查询不到" in warning["补救措施"]
    assert warning["证书未全部可查询的评价计划"].startswith("PJ2024000108000")


def test_province_sees_every_centre_and_its_own_tasks(officer_day):
    settings, manifest = officer_day
    wb = workbook(settings, PROVINCE)
    assert wb.sheetnames[:4] == ["今日须办", "各中心汇总", "省中心事项", "预警"]
    work = table(wb["今日须办"])
    city = table(workbook(settings, FUZHOU)["今日须办"])
    assert {r["机构名称"] for r in city} < {r["机构名称"] for r in work}
    assert {r["鉴定中心"] for r in work if r["机构名称"] in {c["机构名称"] for c in city}} == {FUZHOU_NAME}
    assert sum(r["机构名称"] == INSTITUTIONS["P01"][0] for r in work) == 1
    tasks = {r["机构名称"]: r["事项"] for r in table(wb["省中心事项"])}
    assert tasks == {INSTITUTIONS["I10"][0]: "出具新的备案函", INSTITUTIONS["I11"][0]: "报人社部公示终止备案"}
    summary = {r["鉴定中心"]: r for r in table(wb["各中心汇总"])}
    fuzhou = summary[FUZHOU_NAME]
    assert fuzhou["机构总数"] == 13
    assert fuzhou["视为自动放弃续期"] == 1
    assert fuzhou["续期评估超期"] == 1
    assert fuzhou["已续期"] == 1
    assert fuzhou["已终止备案"] == 1
    assert fuzhou["预警机构"] == 1
    assert fuzhou["今日发出提醒"] == manifest["by_centre"][FUZHOU]
    assert summary["合计"]["机构总数"] == len(INSTITUTIONS)
    # the warnings of every centre
    assert [r["机构名称"] for r in table(wb["预警"])] == [INSTITUTIONS["I08"][0]]


def test_an_empty_list_says_so_in_one_line(officer_day):
    settings, _ = officer_day
    sheet = workbook(settings, "350200")["今日须办"]
    assert sheet["A1"].value == "今日无待办事项"
    assert sheet.max_row == 1


def test_packs_only_for_institutions_that_can_apply_now(officer_day):
    settings, manifest = officer_day
    packs = f"{FUZHOU}_{FUZHOU_NAME}_申请材料"

    def files(
        iid: str,
    ) -> list[str]:  # made on the day the institution's first reminder went out (D − 1 or D)
        return sorted(
            p.name.split("_")[0] for p in next(settings.exports_dir.glob(f"*/{packs}/{iid}_*")).iterdir()
        )

    assert files("I13") == ["附件1", "附件2"]  # first due on D, can apply
    for iid in ("I05", "I09"):  # open rectification; abandoned
        assert files(iid) == ["告知"], iid
    notice = "\n".join(
        p.text for p in Document(next(settings.exports_dir.glob(f"*/{packs}/I05_*/告知_*"))).paragraphs
    )
    assert "不予受理" in notice
    assert "整改" in notice
    assert "诚信承诺" not in notice
    assert (manifest["application_packs"], manifest["cannot_apply_notices"]) == (1, 0)  # I13 only, on D
    before = json.loads((settings.exports_dir / DAY_BEFORE.isoformat() / "manifest.json").read_text("utf-8"))
    assert before["cannot_apply_notices"] == 2
    assert before["application_packs"] >= 5
    annex1 = load_workbook(next(settings.exports_dir.glob(f"*/{packs}/I13_*/附件1_*.xlsx"))).active
    texts = [c for r in annex1.iter_rows(values_only=True) for c in r if isinstance(c, str)]
    assert not any("系统" in t for t in texts)  # no system note on the form
    assert int(annex1.page_setup.paperSize) == 9
    assert annex1.page_setup.fitToHeight == 1


def test_annex2_states_what_the_data_knows(tmp_path, officer_day):
    """附件2 for the day-before exports too: I07 (4 batches) and I06 (freeze request) were reminded on D − 1."""
    settings, _ = officer_day
    texts = {}
    for path in settings.exports_dir.glob("*/*_申请材料/*/附件2_*.docx"):
        texts[path.stem.rsplit("_", 1)[1]] = "\n".join(p.text for p in Document(path).paragraphs)
    assert "I07" in texts
    assert "I06" in texts
    assert "共4批次" in texts["I07"]
    assert "书面说明" in texts["I07"]
    assert "BG2026009" in texts["I06"]
    assert "暂停受理" in texts["I06"]
    assert "均可在技能人才评价工作网查询" in texts["I06"]
    doc = Document(next(settings.exports_dir.glob("*/*_申请材料/I06_*/附件2_*.docx")))
    assert not any(p.style.name.startswith("Heading") for p in doc.paragraphs)
    title = next(p for p in doc.paragraphs if p.text.endswith("工作总结"))
    assert title.alignment == 1
    assert all(r.font.color.rgb == (0, 0, 0) for r in title.runs)


def test_csv_sends_each_reminder_once_keeps_phone_zeros_and_reruns_identically(officer_day):
    settings, manifest = officer_day
    path = next(folder(settings).glob(f"{FUZHOU}_*.csv"))
    raw = path.read_bytes()
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    sent = {(r["机构编号"], r["提醒类型"]) for r in rows}
    assert ("I13", "续期申请期即将开启") in sent
    assert not any(i == "I01" for i, _ in sent)
    assert len(rows) == manifest["by_centre"][FUZHOU]
    before = path.with_name(path.name.replace(D.isoformat(), DAY_BEFORE.isoformat()))
    earlier = settings.exports_dir / DAY_BEFORE.isoformat() / before.name
    earlier_rows = list(csv.DictReader(io.StringIO(earlier.read_bytes().decode("utf-8-sig"))))
    assert any(r["机构编号"] == "I01" for r in earlier_rows)
    assert f'"{LANDLINE}"'.encode() in earlier.read_bytes()  # quoted: the leading 0 survives
    assert all(dt.date.fromisoformat(r["应提醒起始日期"]) for r in rows)  # ISO dates
    digests = file_digests(folder(settings))
    steps.export(D, settings=settings)
    assert file_digests(folder(settings)) == digests


def test_every_sheet_prints_on_a4_landscape_one_page_wide(officer_day):
    settings, _ = officer_day
    for path in folder(settings).glob("*_续期提醒_*.xlsx"):
        for sheet in load_workbook(path).worksheets:
            setup = sheet.page_setup
            assert int(setup.paperSize) == 9, (path.name, sheet.title)
            assert setup.orientation == "landscape", (path.name, sheet.title)
            assert sheet.sheet_properties.pageSetUpPr.fitToPage
            assert setup.fitToWidth == 1
            assert path.name.split("_")[1] in sheet.oddHeader.center.text  # the centre's name
            assert "2026年11月25日" in sheet.oddHeader.center.text
            if sheet.max_row > 1 and sheet.title != "汇总":  # a table: its header row repeats on every page
                assert sheet.print_title_rows == "$1:$1", (path.name, sheet.title)
                assert sheet.freeze_panes == "A2", (path.name, sheet.title)


def _pdf(path: Path, out: Path) -> dict:
    from tests.helpers import require_system_tool

    soffice, pdfinfo = require_system_tool("soffice"), require_system_tool("pdfinfo")
    subprocess.run(
        [
            soffice,
            "--headless",
            f"-env:UserInstallation=file://{out}/lo-profile",
            "--convert-to",
            "pdf",
            "--outdir",
            str(out),
            str(path),
        ],
        check=True,
        capture_output=True,
        timeout=240,
    )
    pdf = out / f"{path.stem}.pdf"
    info = dict(
        line.split(":", 1)
        for line in subprocess.run(
            [pdfinfo, str(pdf)], check=True, capture_output=True, text=True
        ).stdout.splitlines()
        if ":" in line
    )
    width, _, height = info["Page size"].split()[:3]
    return {"pages": int(info["Pages"]), "width": float(width), "height": float(height), "pdf": pdf}


A4_LONG, A4_SHORT = 841.89, 595.28


def test_renders_print_on_a4_as_intended(officer_day, tmp_path):
    """LibreOffice prints the files: workbooks on A4 landscape, the city's work list on one page, 附件1 on one
    A4 page, 附件2 and the 告知 on A4 portrait (the 告知 on one page)."""
    settings, _ = officer_day
    base = folder(settings)
    city = next(base.glob(f"{FUZHOU}_*_续期提醒_*.xlsx"))
    # the work list alone: the city's first sheet on its own must fit one page
    wb = load_workbook(city)
    for title in wb.sheetnames[1:]:
        del wb[title]
    wb.save(tmp_path / "work_list.xlsx")
    work = _pdf(tmp_path / "work_list.xlsx", tmp_path)
    assert work["pages"] == 1
    assert abs(work["width"] - A4_LONG) < 1
    assert abs(work["height"] - A4_SHORT) < 1
    for path in (city, next(base.glob(f"{PROVINCE}_*_续期提醒_*.xlsx"))):
        rendered = _pdf(path, tmp_path)
        assert abs(rendered["width"] - A4_LONG) < 1
        assert abs(rendered["height"] - A4_SHORT) < 1
        assert rendered["pages"] <= 2 * len(load_workbook(path).sheetnames), path.name
        text = subprocess.run(
            ["pdftotext", str(rendered["pdf"]), "-"], check=True, capture_output=True, text=True
        ).stdout
        assert "今日须办" in text
        assert "2026年11月25日" in text
    packs = base / f"{FUZHOU}_{FUZHOU_NAME}_申请材料"
    annex1 = _pdf(next(packs.glob("I13_*/附件1_*.xlsx")), tmp_path)
    assert annex1["pages"] == 1
    assert abs(annex1["width"] - A4_LONG) < 1
    annex2 = _pdf(next(packs.glob("I13_*/附件2_*.docx")), tmp_path)
    assert abs(annex2["width"] - A4_SHORT) < 1
    assert abs(annex2["height"] - A4_LONG) < 1
    notice = _pdf(next(settings.exports_dir.glob(f"*/{packs.name}/I05_*/告知_*.docx")), tmp_path)
    assert notice["pages"] == 1
    assert abs(notice["width"] - A4_SHORT) < 1
