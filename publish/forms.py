"""Pre-filled renewal forms for each institution reminded that can apply now (notice 闽劳鉴〔2022〕26号, 附件1
and 附件2), and a one-page 告知 for one that cannot (renewal_eligibility.can_apply_now is false: abandoned,
terminated, renewed, rejected, or 不予受理): its 诚信承诺 would otherwise have it sign something false.

附件1 《职业技能等级评价机构备案续期申请表》 (.xlsx, one A4 page): the institution's basic information and up to six
evaluation plans: the six most recent counting plans whose certificates are all queryable (R-BATCH, R-CERT).
附件2 《职业技能等级认定工作总结》 draft (.docx, A4 in 公文 style): the facts the summary must state, filled in from the
marts (nature, registration number and period, batches, candidates, pass rates by occupation and level, whether
every certificate is queryable, fewer than the required batches with the 书面说明 prompt, change requests in the
freeze, occupations added, rectifications with 文号 and due date), with the parts only the institution can write
marked for it.

All are a function of the published marts and D: fixed document and zip timestamps give identical bytes.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import pickle
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, Side
from openpyxl.utils import get_column_letter

from pipeline.commands import python_module
from publish.xlsx import (
    DATE_FORMAT,
    append_row,
    date_zh,
    fixed_zip,
    print_like_an_office_document,
    workbook_bytes,
    xml_text,
)

if TYPE_CHECKING:
    from docx.text.paragraph import Paragraph
    from docx.text.run import Run
    from openpyxl.worksheet.worksheet import Worksheet

PLANS_ON_FORM = 6
FORMS_PER_WORKER = 100  # a pair of forms takes about 0.1 s of CPU, a worker about 0.5 s to start
PLAN_HEADERS = [
    "序号",
    "评价计划号",
    "职业名称",
    "工种名称",
    "级别",
    "认定人数",
    "合格人数",
    "是否上网",
    "评价年份",
]
ANNEX1_COLUMN_WIDTHS = [14, 22, 18, 14, 14, 16, 16, 10, 10]
PLEDGE = (  # 附件1 三、诚信承诺
    "本单位自愿申请续期评价机构备案资质，且确定未发生文件中不予受理的情形，承诺所提交的材料真实有效，"
    "如有虚假，将承担相应责任。"
)
THIN = Side(style="thin")
THIN_BOX = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)
BOLD = Font(bold=True)


@dataclass
class Institution:
    institution_id: str
    name: str
    institution_type: str
    institution_type_zh: str  # renewal_eligibility.institution_type_zh
    registration_no: str
    address: str | None
    registered_on: dt.date
    expires_on: dt.date
    responsible_person: str | None
    responsible_phone: str | None
    contact_person: str | None
    contact_phone: str | None
    email: str | None
    centre_name: str
    batch_count: int = 0
    plans: list[dict] = field(default_factory=list)  # evaluation_plans rows of this institution
    by_occupation_level: list[dict] = field(default_factory=list)  # batch_counts summed over years
    facts: dict = field(default_factory=dict)  # renewal_application_facts row
    eligibility: dict = field(
        default_factory=dict
    )  # renewal_eligibility row (stage, verdict, can_apply_now …)

    @property
    def can_apply_now(self) -> bool:
        """From the mart (renewal_eligibility.can_apply_now); an institution without that row gets the pack."""
        return bool(self.eligibility.get("can_apply_now", True))


def plans_for_form(plans: list[dict]) -> list[dict]:
    """The six most recent counting plans whose certificates are all queryable (ties: plan number)."""
    usable = [p for p in plans if p["is_counting"] and p["certificates_all_queryable"]]
    usable.sort(key=lambda p: (p["assessment_date"], p["plan_no"]), reverse=True)
    return usable[:PLANS_ON_FORM]


def _annex1_title(ws: Worksheet) -> None:
    ws.append(["附件1"])
    ws.append(["职业技能等级评价机构备案续期申请表"])
    ws.merge_cells("A2:I2")
    ws["A2"].font = Font(bold=True, size=16)
    ws["A2"].alignment = Alignment(horizontal="center")
    ws.append([])  # (what the system filled in is said in the file's properties, not on the form)


def _annex1_basic_information(ws: Worksheet, inst: Institution) -> None:
    """一、机构基本信息: two label/value pairs a row, values merged across the columns between."""
    ws.append(["一、机构基本信息"])
    ws.cell(ws.max_row, 1).font = BOLD
    basic = [
        ("机构名称", inst.name, "（加盖单位公章）", None),
        ("备案地址", inst.address, None, None),
        ("机构备案号", inst.registration_no, "备案到期时间", inst.expires_on),
        ("评价业务负责人", inst.responsible_person, "手机号码", inst.responsible_phone),
        ("评价业务联系人", inst.contact_person, "手机号码", inst.contact_phone),
        ("电子邮箱", inst.email, "备案所属地", inst.centre_name),
    ]
    wrap = Alignment(wrap_text=True, vertical="center")
    for label, value, label2, value2 in basic:
        append_row(ws, [label, value, None, None, None, label2, value2])
        r = ws.max_row
        ws.merge_cells(start_row=r, start_column=2, end_row=r, end_column=5)
        ws.merge_cells(start_row=r, start_column=7, end_row=r, end_column=9)
        for c in range(1, 10):
            ws.cell(r, c).border = THIN_BOX
            ws.cell(r, c).alignment = wrap
        ws.cell(r, 1).font = ws.cell(r, 6).font = BOLD
        if isinstance(value2, dt.date):
            ws.cell(r, 7).number_format = DATE_FORMAT


def _annex1_plans(ws: Worksheet, inst: Institution) -> None:
    """二、评价计划: PLANS_ON_FORM numbered rows, filled with plans_for_form, the rest left blank."""
    ws.append([])
    ws.append([f"二、备案有效期内开展的评价计划（选填{PLANS_ON_FORM}个计划）"])
    ws.cell(ws.max_row, 1).font = BOLD
    ws.append(PLAN_HEADERS)
    header_row = ws.max_row
    chosen = plans_for_form(inst.plans)
    for n in range(PLANS_ON_FORM):
        p = chosen[n] if n < len(chosen) else None
        append_row(
            ws,
            [n + 1]
            + (
                [
                    p["plan_no"],
                    p["occupation_name"],
                    p["work_type"] or "",
                    p["level_zh"],
                    p["candidates"],
                    p["passed"],
                    "是" if p["certificates_online"] else "否",
                    p["assessment_year"],
                ]
                if p
                else [None] * 8
            ),
        )
    for r in range(header_row, header_row + PLANS_ON_FORM + 1):
        for c in range(1, 10):
            ws.cell(r, c).border = THIN_BOX
            ws.cell(r, c).alignment = Alignment(wrap_text=True, vertical="center", horizontal="center")
    for c in range(1, 10):
        ws.cell(header_row, c).font = BOLD


def _annex1_pledge(ws: Worksheet) -> None:
    """三、诚信承诺 and the lines for signature and seal."""
    ws.append([])
    ws.append(["三、诚信承诺"])
    ws.cell(ws.max_row, 1).font = BOLD
    ws.append([PLEDGE])
    ws.merge_cells(start_row=ws.max_row, start_column=1, end_row=ws.max_row, end_column=9)
    ws.cell(ws.max_row, 1).alignment = Alignment(wrap_text=True)
    ws.row_dimensions[ws.max_row].height = 36
    ws.append([None, None, None, None, None, "授权代表人（签字）："])
    ws.append([None, None, None, None, None, "单位名称（公章）："])
    ws.append([None, None, None, None, None, "年　　月　　日"])


def annex1_xlsx(inst: Institution, as_of: dt.date) -> bytes:
    """附件1, one A4 page: title, basic information, up to six plans, the pledge; identical bytes for D."""
    wb = Workbook()
    stamp = dt.datetime.combine(as_of, dt.time())
    wb.properties.creator = "福建省职业技能鉴定指导中心 续期数据平台"
    wb.properties.title = "职业技能等级评价机构备案续期申请表"
    wb.properties.description = f"系统根据{date_zh(as_of)}的数据预填，请核对后加盖单位公章"
    wb.properties.created = wb.properties.modified = stamp
    ws = wb.active
    ws.title = "附件1 申请表"
    _annex1_title(ws)
    _annex1_basic_information(ws, inst)
    _annex1_plans(ws, inst)
    _annex1_pledge(ws)
    for i, width in enumerate(ANNEX1_COLUMN_WIDTHS, start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    print_like_an_office_document(ws, "", title_rows=None, one_page=True)
    ws.oddHeader.center.text = ws.oddFooter.center.text = None  # a form carries no print title
    return workbook_bytes(wb, stamp)


def _rate(passed: int | None, candidates: int | None) -> str:
    return f"{100 * (passed or 0) / candidates:.1f}%" if candidates else "—"


class _OfficialDocument:
    """A python-docx document in 公文 style: A4 with the GB/T 9704 margins, a centred black title in 黑体 (二号),
    body in 仿宋 三号 with a two-character first-line indent and fixed 28 pt lines, first-level headings in 黑体;
    never Word's blue Heading styles. Fonts fall back to 宋体-like faces where 仿宋 is not installed."""

    BODY_FONT, HEADING_FONT = "仿宋", "黑体"

    def __init__(self, title: str, stamp: dt.datetime) -> None:
        from docx import Document
        from docx.enum.text import WD_LINE_SPACING
        from docx.oxml.ns import qn
        from docx.shared import Cm, Pt

        self.qn, self.Pt = qn, Pt
        self.doc = doc = Document()
        props = doc.core_properties
        props.author = props.last_modified_by = "福建省职业技能鉴定指导中心 续期数据平台"
        props.title = title
        props.created = props.modified = stamp
        props.revision = 1
        section = doc.sections[0]
        section.page_width, section.page_height = Cm(21.0), Cm(29.7)
        section.top_margin, section.bottom_margin = Cm(3.7), Cm(3.5)
        section.left_margin, section.right_margin = Cm(2.8), Cm(2.6)
        normal = doc.styles["Normal"]
        normal.font.size = Pt(16)
        normal.font.name = "Times New Roman"
        normal.element.rPr.rFonts.set(qn("w:eastAsia"), self.BODY_FONT)
        fmt = normal.paragraph_format
        fmt.line_spacing_rule, fmt.line_spacing = WD_LINE_SPACING.EXACTLY, Pt(28)
        fmt.space_before = fmt.space_after = Pt(0)

    def _run(
        self,
        paragraph: Paragraph,
        text: str,
        font: str | None = None,
        size: int | None = None,
        bold: bool = False,
    ) -> Run:
        from docx.shared import RGBColor

        # plain text only: a value from the feed that looks like a field code or a link stays text (no w:fldSimple,
        # w:instrText or w:hyperlink is made here), and characters XML cannot hold become U+FFFD
        run = paragraph.add_run(xml_text(text))
        run.font.color.rgb = RGBColor(0, 0, 0)
        run.bold = bold
        if size:
            run.font.size = self.Pt(size)
        if font:
            run.font.name = font
            run.element.get_or_add_rPr().get_or_add_rFonts().set(self.qn("w:eastAsia"), font)
        return run

    def plain(self, text: str, indent: bool = False) -> Paragraph:
        from docx.shared import Pt

        p = self.doc.add_paragraph()
        if indent:
            p.paragraph_format.first_line_indent = Pt(32)
        self._run(p, text)
        return p

    def title(self, text: str) -> None:
        from docx.enum.text import WD_ALIGN_PARAGRAPH

        p = self.doc.add_paragraph()
        p.alignment = WD_ALIGN_PARAGRAPH.CENTER
        p.paragraph_format.line_spacing = self.Pt(36)
        p.paragraph_format.space_before = p.paragraph_format.space_after = self.Pt(14)
        self._run(p, text, self.HEADING_FONT, 22)

    def heading(self, text: str) -> None:
        p = self.doc.add_paragraph()
        p.paragraph_format.first_line_indent = self.Pt(32)
        self._run(p, text, self.HEADING_FONT)

    def right(self, text: str) -> None:
        from docx.enum.text import WD_ALIGN_PARAGRAPH

        p = self.plain(text)
        p.alignment = WD_ALIGN_PARAGRAPH.RIGHT

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        table = self.doc.add_table(rows=1, cols=len(header))
        table.style = self.doc.styles["Table Grid"]
        for cells, values, bold in [(table.rows[0].cells, header, True)] + [
            (table.add_row().cells, r, False) for r in rows
        ]:
            for cell, text in zip(cells, values, strict=False):
                cell.text = ""
                self._run(cell.paragraphs[0], text, size=12, bold=bold)
                cell.paragraphs[0].paragraph_format.line_spacing = self.Pt(18)

    def save(self, stamp: dt.datetime) -> bytes:
        raw = io.BytesIO()
        self.doc.save(raw)
        return fixed_zip(raw.getvalue(), stamp)


def annex2_docx(inst: Institution, as_of: dt.date) -> bytes:
    """附件2 draft: what the data knows, stated; what only the institution can write, marked 请填写."""
    stamp = dt.datetime.combine(as_of, dt.time())
    doc = _OfficialDocument("职业技能等级认定工作总结", stamp)
    doc.plain("附件2")
    doc.title(f"{inst.name}职业技能等级认定工作总结")

    doc.heading("一、开展职业技能等级认定的基本情况")
    _annex2_basics(doc, inst, as_of)
    if inst.eligibility:
        _annex2_certificates_and_batches(doc, inst)
    if inst.by_occupation_level:
        _annex2_occupation_table(doc, inst.by_occupation_level)
    _annex2_occupation_changes(doc, inst.facts)
    doc.plain("更改评价方式或变更申报条件情况：（请填写；无则写“无”）", indent=True)

    doc.heading("二、存在问题")
    _annex2_rectifications(doc, inst.facts)
    doc.plain(
        "开展认定工作存在的问题（困难）：（请填写。如存在不可抗力无法开展认定工作的，需说明。）", indent=True
    )

    doc.heading("三、下阶段工作")
    doc.plain("（请填写：下一个备案期拓展认定业务、完善认定制度规范、改进认定工作流程的计划。）", indent=True)
    return doc.save(stamp)


def _annex2_basics(doc: _OfficialDocument, inst: Institution, as_of: dt.date) -> None:
    """附件2, part one: the institution, its registration and its assessments in the period, in total."""
    candidates = sum(p["candidates"] or 0 for p in inst.plans if p.get("is_counting", True))
    passed = sum(p["passed"] or 0 for p in inst.plans if p.get("is_counting", True))
    for label, value in [
        ("机构名称", inst.name),
        ("机构性质", inst.institution_type_zh),
        ("机构备案号", inst.registration_no),
        ("备案有效期", f"{date_zh(inst.registered_on)}至{date_zh(inst.expires_on)}"),
    ]:
        doc.plain(f"{label}：{value}", indent=True)
    doc.plain(
        f"总体情况：备案有效期内（截至{date_zh(min(as_of, inst.expires_on))}）共开展职业技能等级认定"
        f"{inst.batch_count}批次，认定{candidates}人次，合格{passed}人，合格率{_rate(passed, candidates)}。",
        indent=True,
    )


def _annex2_certificates_and_batches(doc: _OfficialDocument, inst: Institution) -> None:
    """附件2: whether every certificate can be queried, and a batch count short of the notice's, from the
    institution's row of renewal_eligibility."""
    e = inst.eligibility
    expected, issued, queryable = (
        e.get(k) or 0 for k in ("expected_certificates", "issued_certificates", "queryable_certificates")
    )
    if e.get("certificates_all_queryable"):
        doc.plain(f"证书数据：应发证书{expected}张，已全部核发，均可在技能人才评价工作网查询。", indent=True)
    else:
        doc.plain(
            f"证书数据：应发证书{expected}张，已核发{issued}张，在技能人才评价工作网可查询{queryable}张；"
            f"尚有{expected - queryable}张不可查询，请在提交申请前补齐证书核发和数据上传"
            "（通知三（一）2：证书数据均在技能人才评价工作网可查询）。",
            indent=True,
        )
    if e.get("meets_batch_threshold") is False:
        doc.plain(
            f"认定批次：备案有效期内共{inst.batch_count}批次，未达到通知规定的批次要求。"
            "请随本总结提交书面说明：（请填写未达到批次要求的原因；因不可抗力无法开展认定的，请说明具体情况。）",
            indent=True,
        )


def _annex2_occupation_table(doc: _OfficialDocument, by_occupation_level: list[dict]) -> None:
    """附件2: the assessments by occupation (work type) and level."""
    doc.table(
        ["职业（工种）", "级别", "批次", "认定人数", "合格人数", "合格率"],
        [
            [
                row["occupation_name"] + (f"（{row['work_type']}）" if row["work_type"] else ""),
                row["level_zh"],
                str(row["batches"]),
                str(row["candidates"] or 0),
                str(row["passed"] or 0),
                _rate(row["passed"], row["candidates"]),
            ]
            for row in by_occupation_level
        ],
    )


def _annex2_occupation_changes(doc: _OfficialDocument, facts: dict) -> None:
    """附件2: occupations added in the period, and requests to add or change one made in the window (R-FREEZE)."""
    added = facts.get("occupations_added") or 0
    doc.plain(
        f"新增职业（工种）：备案有效期内新增{added}个：{facts.get('occupations_added_list')}。"
        if added
        else "新增职业（工种）：备案有效期内无新增。",
        indent=True,
    )
    if facts.get("freeze_requests"):
        doc.plain(
            f"续期申请期内提出的职业（工种）新增、变更申请{facts['freeze_requests']}项："
            f"{facts.get('freeze_requests_list')}。按通知规定，续期申请期内暂停受理此类申请。",
            indent=True,
        )


def _annex2_rectifications(doc: _OfficialDocument, facts: dict) -> None:
    """附件2, part two: the rectification notices of the period and how many were completed."""
    notices = facts.get("rectification_notices") or 0
    doc.plain(
        f"整改情况：备案有效期内收到整改通知{notices}份，已完成整改{facts.get('rectifications_completed') or 0}份："
        f"{facts.get('rectification_list')}。"
        if notices
        else "整改情况：备案有效期内未收到整改通知。",
        indent=True,
    )


def cannot_apply_notice_docx(inst: Institution, as_of: dt.date) -> bytes:
    """One page for an institution that cannot apply now (stage closed, or 不予受理): why, and what to do. No
    application form: signing its 诚信承诺 (未发生不予受理的情形) would be signing something false."""
    stamp = dt.datetime.combine(as_of, dt.time())
    doc = _OfficialDocument("暂不能申请备案续期的告知", stamp)
    e = inst.eligibility
    doc.title("关于暂不能申请备案续期的告知")
    doc.plain(f"{inst.name}（机构备案号：{inst.registration_no}）：")
    checked = (
        f"贵单位评价机构备案有效期至{date_zh(inst.expires_on)}。经核对技能人才评价工作网数据和"
        f"{inst.centre_name}记录（截至{date_zh(as_of)}），"
    )
    if e.get("conditions_zh") != e.get("renewal_verdict_zh"):  # a closed stage: its meaning says it all
        doc.plain(
            f"{checked}贵单位{e.get('conditions_zh')}，目前不能按《职业技能等级评价机构备案续期申请表》"
            "提交续期申请。",
            indent=True,
        )
    else:
        doc.plain(
            f"{checked}贵单位当前处于“{e.get('lifecycle_stage_zh')}”阶段，续期条件为“{e.get('conditions_zh')}”，"
            "按通知规定，续期申请不予受理，目前不能提交《职业技能等级评价机构备案续期申请表》。",
            indent=True,
        )
    if e.get("reasons_zh"):
        doc.plain(f"具体情况：{e['reasons_zh']}。", indent=True)
    if e.get("message_institution_zh"):
        doc.plain(f"请贵单位：{e['message_institution_zh']}", indent=True)
    doc.plain(f"如有疑问，请与{inst.centre_name}联系。", indent=True)
    doc.plain("")
    doc.right(inst.centre_name)
    doc.right(date_zh(as_of))
    return doc.save(stamp)


def form_kinds(inst: Institution) -> tuple[str, ...]:
    """The forms institution_forms makes for `inst`, in its order (publish/form_cache.py keys each by its kind)."""
    return ("annex1", "annex2") if inst.can_apply_now else ("notice",)


def institution_forms(inst: Institution, as_of: dt.date) -> tuple[bytes, ...]:
    """附件1 and 附件2 of an institution that can apply now; a one-page 告知 (one file) for any other."""
    if not inst.can_apply_now:
        return (cannot_apply_notice_docx(inst, as_of),)
    return annex1_xlsx(inst, as_of), annex2_docx(inst, as_of)


def build_forms(
    institutions: list[Institution],
    as_of: dt.date,
    workers: int | None = None,
) -> list[tuple[bytes, ...]]:
    """Each institution's forms, in order. With hundreds to make (a province's reminders: about 550
    institutions, 50 s in one process), one worker process per core makes a share of them: `python -m
    publish.forms`, institutions in and forms out as pickles over its pipes. (Not multiprocessing: a fork would
    carry, and be counted for, all of the Airflow task's memory; a spawn re-imports the caller's main script.)"""
    if workers is None:
        workers = min(os.cpu_count() or 1, len(institutions) // FORMS_PER_WORKER)
    if workers < 2:
        return [institution_forms(inst, as_of) for inst in institutions]
    size = -(-len(institutions) // workers)
    shares = [institutions[i : i + size] for i in range(0, len(institutions), size)]
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))

    def make(share: list[Institution]) -> list[tuple[bytes, ...]]:
        worker = subprocess.run(
            python_module("publish.forms"),
            input=pickle.dumps((share, as_of)),
            capture_output=True,
            env=env,
            check=False,
        )
        if worker.returncode != 0:
            raise RuntimeError(
                f"the forms worker for {share[0].institution_id}…{share[-1].institution_id} "
                f"failed: {worker.stderr.decode(errors='replace')[-2000:]}"
            )
        return pickle.loads(worker.stdout)

    with ThreadPoolExecutor(len(shares)) as pool:
        return [forms for share in pool.map(make, shares) for forms in share]


if __name__ == "__main__":  # a worker of build_forms
    share, day = pickle.load(sys.stdin.buffer)
    pickle.dump([institution_forms(inst, day) for inst in share], sys.stdout.buffer)
