"""A centre's reminder workbook, built around the officer's day.

Sheets, in order: `今日须办` (the centre's work list, mart work_items, most urgent first), for the province
`各中心汇总` (every centre's stages, overdue reviews, at-risk institutions, work rows and reminders sent
today) and `省中心事项` (its own tasks), `预警` (mart renewal_warnings), `汇总` (today's reminders by type),
then one sheet per reminder type with the reminders sent today (each reminder once, as in the CSV).

Every sheet prints on A4 landscape, one page wide, with its header row repeated and a print title naming the
centre and the date. Dates are real date cells shown as 2026年11月25日. When the feed has stopped changing
(R-FEED), the first sheet opens on the mart feed_freshness's notice, above its table and on every printed page.
Nothing here decides a rule: the rows, labels and texts come from the marts; this module only lays them out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from copy import copy
from dataclasses import dataclass

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.styles.cell_style import StyleArray
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from pipeline.settings import province_code
from publish.xlsx import (
    DATE_FORMAT,
    append_row,
    date_zh,
    print_like_an_office_document,
    workbook_bytes,
)

# row fill by urgency: today's deadlines, overdue reviews, and any other deadline within a week
URGENCY_FILLS = {
    1: PatternFill("solid", fgColor="F8CBAD"),
    2: PatternFill("solid", fgColor="FFE699"),
    "week": PatternFill("solid", fgColor="FFF2CC"),
}
HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
NOTICE_FILL = PatternFill("solid", fgColor="FCE4D6")
NOTICE_FONT = Font(bold=True, size=12, color="C00000")
THIN = Side(style="thin", color="999999")
BOX = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
EMPTY_WORK_LIST = "今日无待办事项"
EMPTY_WARNINGS = "目前没有预警机构"


@dataclass(frozen=True)
class Column:
    header: str
    width: float
    value: Callable[[dict], object]
    kind: str = "text"  # text | date | number


def days_text(days: int | None) -> str:
    if days is None:
        return "—"
    if days == 0:
        return "今日"
    return f"逾期{-days}天" if days < 0 else f"剩{days}天"


def person(name: str | None, phone: str | None) -> str:
    return "\n".join(x for x in (name, phone) if x)


def certificates(row: dict) -> str:
    return f"{row.get('queryable_certificates') or 0}/{row.get('expected_certificates') or 0}"


def _conditions_header(as_of: dt.date) -> str:
    return f"续期条件（截至{date_zh(as_of)}）"


def work_columns(as_of: dt.date, province: bool, new_ids: set[str]) -> list[Column]:
    columns = [Column("序号", 4, lambda r: r["sort_order"], "number")]
    if province:
        columns.append(Column("鉴定中心", 10, lambda r: r["supervising_centre_zh"]))
    return [
        *columns,
        Column("紧急程度", 6, lambda r: r["urgency_zh"]),
        Column("新增", 5, lambda r: "新增" if r["institution_id"] in new_ids else ""),
        Column("机构名称", 16, lambda r: r["institution_name"]),
        Column("机构备案号", 12, lambda r: r["registration_no"]),
        Column("待办事项", 12, lambda r: r["item_codes_zh"]),
        Column("办理事项", 28, lambda r: r["actions_zh"]),
        Column("最早期限", 13, lambda r: r["deadline"], "date"),
        Column("剩余天数", 7, lambda r: days_text(r["days_left"])),
        Column("当前阶段", 8, lambda r: r["lifecycle_stage_zh"]),
        Column(_conditions_header(as_of), 10, lambda r: r["conditions_zh"]),
        Column("认定批次数", 5, lambda r: r["batch_count"], "number"),
        Column("可查询证书/应发证书", 9, certificates),
        Column("下一步工作（致本中心）", 24, lambda r: r["next_step_centre_zh"]),
        Column("转告机构的提示", 24, lambda r: r["message_institution_zh"]),
        Column("评价业务联系人", 11, lambda r: person(r["contact_person"], r["contact_phone"])),
    ]


def warning_columns(as_of: dt.date, province: bool) -> list[Column]:
    columns = [Column("鉴定中心", 13, lambda r: r["supervising_centre_zh"])] if province else []
    return [
        *columns,
        Column("机构名称", 20, lambda r: r["institution_name"]),
        Column("机构备案号", 14, lambda r: r["registration_no"]),
        Column("续期申请期开始日期", 13, lambda r: r["window_opens_on"], "date"),
        Column("距申请期开始", 8, lambda r: days_text(r["days_until_window"])),
        Column(_conditions_header(as_of), 12, lambda r: r["renewal_verdict_zh"]),
        Column("预警原因", 22, lambda r: r["warning_reasons_zh"]),
        Column("认定批次数", 6, lambda r: r["batch_count"], "number"),
        Column("尚需批次数", 6, lambda r: r["batches_needed"], "number"),
        Column("可查询证书/应发证书", 9, certificates),
        Column("证书未全部可查询的评价计划", 26, lambda r: r["plans_with_unqueryable_certificates"]),
        Column("未完成的整改", 20, lambda r: r["open_rectifications"]),
        Column("补救措施", 34, lambda r: r["fix_zh"]),
        Column("评价业务联系人", 13, lambda r: person(r["contact_person"], r["contact_phone"])),
        Column("评价业务负责人", 13, lambda r: person(r["responsible_person"], r["responsible_phone"])),
    ]


def reminder_columns(as_of: dt.date, date_header: str) -> list[Column]:
    """The reminders sent today (one sheet per type); `date_header` says what the key date is."""
    return [
        Column("机构名称", 16, lambda r: r["institution_name"]),
        Column("机构备案号", 12, lambda r: r["registration_no"]),
        Column("提醒类型", 10, lambda r: r["reminder_type_zh"]),
        Column("提醒对象", 8, lambda r: r["audience_zh"]),
        Column("应提醒起始日期", 13, lambda r: r["first_due_on"], "date"),
        Column(date_header, 13, lambda r: r["deadline"], "date"),
        Column("剩余天数", 7, lambda r: days_text(r["days_left"])),
        Column("备案到期时间", 13, lambda r: r["expires_on"], "date"),
        Column("当前阶段", 8, lambda r: r["lifecycle_stage_zh"]),
        Column(_conditions_header(as_of), 10, lambda r: r["conditions_zh"]),
        Column("认定批次数", 5, lambda r: r["batch_count"], "number"),
        Column("可查询证书/应发证书", 9, certificates),
        Column("原因", 16, lambda r: r["reasons_zh"]),
        Column("下一步工作（致本中心）", 24, lambda r: r["next_step_centre_zh"]),
        Column("转告机构的提示", 24, lambda r: r["message_institution_zh"]),
        Column("评价业务联系人", 11, lambda r: person(r["contact_person"], r["contact_phone"])),
        Column("评价业务负责人", 11, lambda r: person(r["responsible_person"], r["responsible_phone"])),
    ]


def _display_width(text: str) -> float:
    """Width in column units at 10 pt: a CJK character takes about two, a Latin one about one."""
    return sum(2.0 if ord(ch) > 0x2E80 else 1.0 for ch in text)


def _row_height(values: list, columns: list[Column], size: float = 10, header: bool = False) -> float:
    """Row height (points) that shows every wrapped line: spreadsheet programs do not always grow a row for
    wrapped text when they open a file, so the height is written out (the text is then never cut off)."""
    lines = 1
    for value, column in zip(values, columns, strict=False):
        if value is None or (column.kind != "text" and not header):
            continue
        usable = max(column.width - 1, 1)
        lines = max(
            lines,
            sum(max(1, -(-int(_display_width(part)) // int(usable))) for part in str(value).split("\n")),
        )
    return round(lines * size * 1.3 + 3, 1)


def _table(
    ws: Worksheet,
    columns: list[Column],
    rows: list[dict],
    fill: Callable[[dict], PatternFill | None] | None = None,
) -> None:
    """The header row and one row per dict, below whatever the sheet holds already (a notice line)."""
    top = ws.max_row + 1 if ws._cells else 1
    ws.append([c.header for c in columns])
    for i, column in enumerate(columns, start=1):
        cell = ws.cell(row=top, column=i)
        cell.font, cell.fill, cell.border = Font(bold=True, size=10), HEADER_FILL, BOX
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        ws.column_dimensions[get_column_letter(i)].width = column.width
    ws.row_dimensions[top].height = _row_height([c.header for c in columns], columns, header=True)
    wrap = Alignment(wrap_text=True, vertical="top")
    body = Font(size=10)
    # a body cell's style by (date?, fill): openpyxl looks every style object up in the workbook's lists on
    # each assignment (two thirds of a province export's time), so each combination is made once and copied
    styles: dict[tuple[bool, PatternFill | None], StyleArray] = {}
    for n, row in enumerate(rows, start=top + 1):
        values = [c.value(row) for c in columns]
        append_row(ws, values)
        ws.row_dimensions[n].height = _row_height(values, columns)
        row_fill = fill(row) if fill else None
        for i, column in enumerate(columns, start=1):
            cell = ws.cell(row=n, column=i)
            key = (column.kind == "date", row_fill)  # a PatternFill hashes and compares by value
            if key in styles:
                cell._style = copy(styles[key])
                continue
            cell.alignment, cell.border, cell.font = wrap, BOX, body
            if column.kind == "date":
                cell.number_format = DATE_FORMAT
            if row_fill is not None:
                cell.fill = row_fill
            styles[key] = copy(cell._style)
    ws.freeze_panes = f"A{top + 1}"
    ws.auto_filter.ref = f"A{top}:{get_column_letter(len(columns))}{top + len(rows)}"


def _one_line(ws: Worksheet, text: str) -> None:
    ws.append([text])
    ws.cell(row=ws.max_row, column=1).font = Font(bold=True, size=12)
    ws.column_dimensions["A"].width = max(ws.column_dimensions["A"].width or 0, 40)


def _notice(ws: Worksheet, text: str, columns: int) -> None:
    """`text` as the sheet's first line, across `columns` columns, in red on a light fill: the feed's notice
    (R-FEED), which an officer must read before the rows below it."""
    append_row(ws, [text])
    cell = ws.cell(row=1, column=1)
    cell.font, cell.fill = NOTICE_FONT, NOTICE_FILL
    cell.alignment = Alignment(wrap_text=True, vertical="center")
    if columns > 1:
        ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=columns)
    else:
        ws.column_dimensions["A"].width = 80
    ws.row_dimensions[1].height = 36  # two lines at 12 pt, where the columns are narrow


def _urgency_fill(row: dict) -> PatternFill | None:
    if row["urgency_group"] in URGENCY_FILLS:
        return URGENCY_FILLS[row["urgency_group"]]
    if row["days_left"] is not None and row["days_left"] <= 7:
        return URGENCY_FILLS["week"]
    return None


def _in_display_order(codes: Mapping[str, int | None]) -> list[str]:
    """Codes by their seed's sort_order (from the marts), any without one last, by code."""
    return sorted(codes, key=lambda code: (codes[code] is None, codes[code] or 0, code))


def centre_workbook(
    code: str,
    as_of: dt.date,
    work: list[dict],
    warnings: list[dict],
    sent: list[dict],
    summary: list[dict] | None = None,
    sent_by_centre: dict[str, int] | None = None,
    new_ids: set[str] | None = None,
    *,
    centres: Mapping[str, str],
    feed_notice: str | None = None,
) -> bytes:
    """The workbook of centre `code` for D. `work`: its work_items rows in order; `warnings`: its
    renewal_warnings rows; `sent`: the reminders it sends today (its CSV's rows); `new_ids`: the institutions
    marked 新增 (default: those of `sent`; the province's list marks every centre's); `centres`: every centre's
    name by code (mart centres), in order; for the province also `summary` (centre_summary rows) and the number
    of reminders every centre sends today; `feed_notice`: the notice of mart feed_freshness when the feed is not
    fresh (R-FEED), the first line of the first sheet."""
    name = centres.get(code, code)
    province = code == province_code()
    wb = Workbook()
    stamp = dt.datetime.combine(as_of, dt.time())
    wb.properties.creator = "福建省职业技能鉴定指导中心 续期数据平台"
    wb.properties.title = f"{name} 续期提醒与今日须办 {date_zh(as_of)}"
    wb.properties.created = wb.properties.modified = stamp

    def header(sheet_title: str) -> str:
        return f"{name}　{sheet_title}　{date_zh(as_of)}"

    marked = new_ids if new_ids is not None else {r["institution_id"] for r in sent}
    _work_sheet(wb.active, as_of, work, province, marked, feed_notice, header)
    if province:
        # the province's own sheets: every centre's roll-up, and its own tasks
        _centres_summary_sheet(wb, work, summary or [], sent_by_centre or {}, centres, header)
        _province_tasks_sheet(wb, work, header)
    _warnings_sheet(wb, as_of, warnings, province, header)
    by_type: dict[str, list[dict]] = {}
    for row in sent:
        by_type.setdefault(row["reminder_type"], []).append(row)
    types = _in_display_order({t: rows[0]["reminder_type_sort_order"] for t, rows in by_type.items()})
    _summary_sheet(wb, name, as_of, work, warnings, sent, by_type, types, header)
    for reminder_type in types:
        _reminder_sheet(wb, as_of, by_type[reminder_type], header)
    return workbook_bytes(wb, stamp)


def _work_sheet(
    ws: Worksheet,
    as_of: dt.date,
    work: list[dict],
    province: bool,
    marked: set[str],
    feed_notice: str | None,
    header: Callable[[str], str],
) -> None:
    """今日须办, the first sheet: the centre's work list (the province's covers every centre), under the notice of
    a feed that stopped changing; `marked` are the institutions shown as 新增."""
    ws.title = "今日须办"
    if work:
        columns = work_columns(as_of, province, marked)
        if feed_notice:
            _notice(ws, feed_notice, len(columns))
        _table(ws, columns, work, _urgency_fill)
        print_like_an_office_document(
            ws, header("今日须办（全省）" if province else "今日须办"), "1:2" if feed_notice else "1:1"
        )
    else:
        if feed_notice:
            _notice(ws, feed_notice, 1)
        _one_line(ws, EMPTY_WORK_LIST)
        print_like_an_office_document(ws, header("今日须办"), title_rows=None)


def _warnings_sheet(
    wb: Workbook, as_of: dt.date, warnings: list[dict], province: bool, header: Callable[[str], str]
) -> None:
    """预警 (R-WARN): the institutions whose renewal window has not opened yet and that do not meet the renewal
    conditions on today's data."""
    ws = wb.create_sheet("预警")
    if warnings:
        _table(ws, warning_columns(as_of, province), warnings)
        print_like_an_office_document(ws, header("预警：续期申请期开启前按现有数据不符合续期条件的机构"))
    else:
        _one_line(ws, EMPTY_WARNINGS)
        print_like_an_office_document(ws, header("预警"), title_rows=None)


def _reminder_sheet(wb: Workbook, as_of: dt.date, rows: list[dict], header: Callable[[str], str]) -> None:
    """The sheet of one reminder type: the reminders of that type sent today."""
    ws = wb.create_sheet(rows[0]["reminder_type_zh"][:31])
    _table(ws, reminder_columns(as_of, rows[0]["deadline_label_zh"] or "截止日期"), rows)
    print_like_an_office_document(ws, header(f"今日发出的提醒：{rows[0]['reminder_type_zh']}"))


def _summary_sheet(
    wb: Workbook,
    name: str,
    as_of: dt.date,
    work: list[dict],
    warnings: list[dict],
    sent: list[dict],
    by_type: dict[str, list[dict]],
    types: list[str],
    header: Callable[[str], str],
) -> None:
    ws = wb.create_sheet("汇总")
    append_row(ws, ["鉴定中心", name])
    ws.append(["统计日期", as_of])
    ws["B2"].number_format = DATE_FORMAT
    ws["B2"].alignment = Alignment(horizontal="left")
    ws.append(["今日须办（机构数）", len(work)])
    ws.append(["预警机构数", len(warnings)])
    ws.append(["今日发出提醒数", len(sent)])
    ws.append(["涉及机构数", len({r["institution_id"] for r in sent})])
    ws.append([])
    ws.append(["提醒类型", "数量", "提醒对象", "给机构的一般提示"])
    head = ws.max_row
    for reminder_type in types:
        first = by_type[reminder_type][0]
        append_row(
            ws,
            [
                first["reminder_type_zh"],
                len(by_type[reminder_type]),
                first["audience_zh"],
                first["next_step_zh"],
            ],
        )
    for row in ws.iter_rows(min_row=1, max_row=ws.max_row):
        for cell in row:
            cell.alignment = Alignment(wrap_text=True, vertical="top", horizontal=cell.alignment.horizontal)
    for cell in ws[head]:
        cell.font, cell.fill = Font(bold=True), HEADER_FILL
    for column, width in zip("ABCD", (22, 16, 18, 70), strict=False):
        ws.column_dimensions[column].width = width
    print_like_an_office_document(ws, header("汇总"), title_rows=None)


def _stage_count(stage: str) -> Callable[[dict], object]:
    """A row's count of institutions in `stage` (a column of 各中心汇总)."""
    return lambda r: r[f"stage:{stage}"]


def _centres_summary_rows(
    work: list[dict], summary: list[dict], sent_by_centre: Mapping[str, int], centres: Mapping[str, str]
) -> tuple[list[dict], list[str]]:
    """各中心汇总's rows, one per centre with its count of institutions in each stage, and the stages in the
    mart's display order."""
    stages = _in_display_order({r["lifecycle_stage"]: r["lifecycle_stage_sort_order"] for r in summary})
    by_centre: dict[str, dict] = {}
    for r in summary:
        entry = by_centre.setdefault(
            r["supervising_centre"],
            {
                "overdue_reviews": r["overdue_reviews"],
                "institutions_at_risk": r["institutions_at_risk"],
                "stages": {},
            },
        )
        entry["stages"][r["lifecycle_stage"]] = r["institutions"]
    work_by_centre: dict[str, int] = {}
    for r in work:
        work_by_centre[r["supervising_centre"]] = work_by_centre.get(r["supervising_centre"], 0) + 1
    rows = []
    for code, name in centres.items():
        entry = by_centre.get(code, {"overdue_reviews": 0, "institutions_at_risk": 0, "stages": {}})
        rows.append(
            {
                "centre": name,
                **{f"stage:{s}": entry["stages"].get(s, 0) for s in stages},
                "total": sum(entry["stages"].values()),
                "overdue_reviews": entry["overdue_reviews"],
                "at_risk": entry["institutions_at_risk"],
                "work": work_by_centre.get(code, 0),
                "sent": sent_by_centre.get(code, 0),
            }
        )
    return rows, stages


def _centres_summary_sheet(
    wb: Workbook,
    work: list[dict],
    summary: list[dict],
    sent_by_centre: Mapping[str, int],
    centres: Mapping[str, str],
    header: Callable[[str], str],
) -> None:
    """各中心汇总: one row per centre, a column per stage (labels and order from the mart), then the centre's own
    measures, and a row of totals."""
    ws = wb.create_sheet("各中心汇总")
    labels = {r["lifecycle_stage"]: r["lifecycle_stage_zh"] for r in summary}
    rows, stages = _centres_summary_rows(work, summary, sent_by_centre, centres)
    totals = {"centre": "合计"} | {k: sum(r[k] for r in rows) for k in rows[0] if k != "centre"}
    columns = (
        [Column("鉴定中心", 16, lambda r: r["centre"]), Column("机构总数", 7, lambda r: r["total"], "number")]
        + [Column(labels[s], 8, _stage_count(s), "number") for s in stages]
        + [
            Column("续期评估超期", 8, lambda r: r["overdue_reviews"], "number"),
            Column("预警机构", 7, lambda r: r["at_risk"], "number"),
            Column("今日须办机构数（本中心）", 9, lambda r: r["work"], "number"),
            Column("今日发出提醒", 8, lambda r: r["sent"], "number"),
        ]
    )
    _table(ws, columns, [*rows, totals])
    for cell in ws[ws.max_row]:
        cell.font = Font(bold=True)
    print_like_an_office_document(ws, header("各中心汇总"))


def _province_tasks_sheet(wb: Workbook, work: list[dict], header: Callable[[str], str]) -> None:
    """省中心事项: the province's own tasks (new 备案函, termination reports)."""
    ws = wb.create_sheet("省中心事项")
    tasks = [r for r in work if r["has_province_task"]]
    if tasks:
        _table(
            ws,
            [
                Column("鉴定中心", 16, lambda r: r["supervising_centre_zh"]),
                Column("机构名称", 24, lambda r: r["institution_name"]),
                Column("机构备案号", 16, lambda r: r["registration_no"]),
                Column("当前阶段", 12, lambda r: r["lifecycle_stage_zh"]),
                Column("事项", 20, lambda r: r["item_codes_zh"]),
                Column("办理事项", 60, lambda r: r["actions_zh"]),
                Column("评价业务联系人", 14, lambda r: person(r["contact_person"], r["contact_phone"])),
            ],
            tasks,
        )
        print_like_an_office_document(ws, header("省中心事项"))
    else:
        _one_line(ws, "今日无省中心事项")
        print_like_an_office_document(ws, header("省中心事项"), title_rows=None)
