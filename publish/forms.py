"""Pre-filled renewal forms for each institution reminded (notice 闽劳鉴〔2022〕26号, 附件1 and 附件2).

附件1 《职业技能等级评价机构备案续期申请表》 (.xlsx): the institution's basic information and up to six evaluation
plans: the six most recent counting plans whose certificates are all queryable (R-BATCH, R-CERT).
附件2 《职业技能等级认定工作总结》 draft (.docx): the facts the summary must state, filled in from the marts
(nature, registration number and period, batches, candidates, pass rates by occupation and level, occupations
added, rectifications received), with the parts only the institution can write marked for it.

Both are a function of the published marts and D: fixed document and zip timestamps give identical bytes.
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

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, Side
from openpyxl.utils import get_column_letter

from publish.xlsx import fixed_zip

LEVELS_ZH = {1: "一级/高级技师", 2: "二级/技师", 3: "三级/高级工", 4: "四级/中级工", 5: "五级/初级工"}
INSTITUTION_TYPES_ZH = {"employer": "用人单位", "school": "院校", "social_org": "社会培训评价组织"}
PLANS_ON_FORM = 6
FORMS_PER_WORKER = 100  # a pair of forms takes about 0.1 s of CPU, a worker about 0.5 s to start
PLAN_HEADERS = ["序号", "评价计划号", "职业名称", "工种名称", "级别", "认定人数", "合格人数", "是否上网", "评价年份"]


@dataclass
class Institution:
    institution_id: str
    name: str
    institution_type: str
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


def plans_for_form(plans: list[dict]) -> list[dict]:
    """The six most recent counting plans whose certificates are all queryable (ties: plan number)."""
    usable = [p for p in plans if p["is_counting"] and p["certificates_all_queryable"]]
    usable.sort(key=lambda p: (p["assessment_date"], p["plan_no"]), reverse=True)
    return usable[:PLANS_ON_FORM]


def annex1_xlsx(inst: Institution, as_of: dt.date) -> bytes:
    wb = Workbook()
    stamp = dt.datetime.combine(as_of, dt.time())
    wb.properties.creator = "福建省职业技能鉴定指导中心 续期数据平台"
    wb.properties.title = "职业技能等级评价机构备案续期申请表"
    wb.properties.created = wb.properties.modified = stamp
    ws = wb.active
    ws.title = "附件1 申请表"
    thin = Side(style="thin")
    box = Border(left=thin, right=thin, top=thin, bottom=thin)
    wrap = Alignment(wrap_text=True, vertical="center")
    bold = Font(bold=True)

    ws.append(["附件1"])
    ws.append(["职业技能等级评价机构备案续期申请表"])
    ws.merge_cells("A2:I2")
    ws["A2"].font = Font(bold=True, size=16)
    ws["A2"].alignment = Alignment(horizontal="center")
    ws.append([f"（系统预填，填报日期 {as_of.isoformat()}；请核对后加盖单位公章）"])
    ws.merge_cells("A3:I3")
    ws.append(["一、机构基本信息"])
    ws.cell(ws.max_row, 1).font = bold
    basic = [
        ("机构名称", inst.name, "（加盖单位公章）", None),
        ("备案地址", inst.address, None, None),
        ("机构备案号", inst.registration_no, "备案到期时间", inst.expires_on),
        ("评价业务负责人", inst.responsible_person, "手机号码", inst.responsible_phone),
        ("评价业务联系人", inst.contact_person, "手机号码", inst.contact_phone),
        ("电子邮箱", inst.email, "备案所属地", inst.centre_name),
    ]
    for label, value, label2, value2 in basic:
        ws.append([label, value, None, None, None, label2, value2])
        r = ws.max_row
        ws.merge_cells(start_row=r, start_column=2, end_row=r, end_column=5)
        ws.merge_cells(start_row=r, start_column=7, end_row=r, end_column=9)
        for c in range(1, 10):
            ws.cell(r, c).border = box
            ws.cell(r, c).alignment = wrap
        ws.cell(r, 1).font = ws.cell(r, 6).font = bold
        if isinstance(value2, dt.date):
            ws.cell(r, 7).number_format = "yyyy-mm-dd"

    ws.append([])
    ws.append([f"二、备案有效期内开展的评价计划（选填{PLANS_ON_FORM}个计划）"])
    ws.cell(ws.max_row, 1).font = bold
    ws.append(PLAN_HEADERS)
    header_row = ws.max_row
    chosen = plans_for_form(inst.plans)
    for n in range(PLANS_ON_FORM):
        p = chosen[n] if n < len(chosen) else None
        ws.append([n + 1] + ([p["plan_no"], p["occupation_name"], p["work_type"] or "",
                               LEVELS_ZH.get(p["level"], p["level"]), p["candidates"], p["passed"],
                               "是" if p["certificates_online"] else "否", p["assessment_year"]]
                              if p else [None] * 8))
    for r in range(header_row, header_row + PLANS_ON_FORM + 1):
        for c in range(1, 10):
            ws.cell(r, c).border = box
            ws.cell(r, c).alignment = Alignment(wrap_text=True, vertical="center", horizontal="center")
    for c in range(1, 10):
        ws.cell(header_row, c).font = bold

    ws.append([])
    ws.append(["三、诚信承诺"])
    ws.cell(ws.max_row, 1).font = bold
    ws.append([("本单位自愿申请续期评价机构备案资质，且确定未发生文件中不予受理的情形，承诺所提交的材料真实有效，"
               "如有虚假，将承担相应责任。")])
    ws.merge_cells(start_row=ws.max_row, start_column=1, end_row=ws.max_row, end_column=9)
    ws.cell(ws.max_row, 1).alignment = Alignment(wrap_text=True)
    ws.row_dimensions[ws.max_row].height = 36
    ws.append([None, None, None, None, None, "授权代表人（签字）："])
    ws.append([None, None, None, None, None, "单位名称（公章）："])
    ws.append([None, None, None, None, None, "年　　月　　日"])

    for i, width in enumerate([14, 22, 18, 14, 14, 16, 16, 10, 10], start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth = 1
    raw = io.BytesIO()
    wb.save(raw)
    return fixed_zip(raw.getvalue(), stamp)


def _rate(passed: int | None, candidates: int | None) -> str:
    return f"{100 * (passed or 0) / candidates:.1f}%" if candidates else "—"


def annex2_docx(inst: Institution, as_of: dt.date) -> bytes:
    from docx import Document
    from docx.oxml.ns import qn
    from docx.shared import Pt

    doc = Document()
    stamp = dt.datetime.combine(as_of, dt.time())
    props = doc.core_properties
    props.author = props.last_modified_by = "福建省职业技能鉴定指导中心 续期数据平台"
    props.title = "职业技能等级认定工作总结（草稿）"
    props.created = props.modified = stamp
    props.revision = 1
    style = doc.styles["Normal"]
    style.font.name, style.font.size = "SimSun", Pt(12)
    style.element.rPr.rFonts.set(qn("w:eastAsia"), "宋体")
    # styles looked up once: python-docx finds a style given by name with a linear search (~2.5 ms each)
    heading = {level: doc.styles[f"Heading {level}"] for level in (1, 2)}

    candidates = sum(p["candidates"] or 0 for p in inst.plans)
    passed = sum(p["passed"] or 0 for p in inst.plans)
    facts = inst.facts
    doc.add_paragraph("附件2")
    doc.add_paragraph(f"{inst.name}职业技能等级认定工作总结（草稿）", heading[1])
    doc.add_paragraph(f"（系统根据{as_of.isoformat()}的数据预填事实部分；标注“请填写”的内容由机构补充。）")

    doc.add_paragraph("一、开展职业技能等级认定的基本情况", heading[2])
    for label, value in [
        ("机构名称", inst.name),
        ("机构性质", INSTITUTION_TYPES_ZH.get(inst.institution_type, inst.institution_type)),
        ("机构备案号", inst.registration_no),
        ("备案有效期", f"{inst.registered_on.isoformat()} 至 {inst.expires_on.isoformat()}"),
    ]:
        doc.add_paragraph(f"{label}：{value}")
    doc.add_paragraph(
        f"总体情况：备案有效期内（截至{min(as_of, inst.expires_on).isoformat()}）共开展职业技能等级认定"
        f"{inst.batch_count}批次，认定{candidates}人次，合格{passed}人，合格率{_rate(passed, candidates)}。")
    if inst.by_occupation_level:
        table = doc.add_table(rows=1, cols=6)
        table.style = doc.styles["Table Grid"]
        for cell, text in zip(table.rows[0].cells, ["职业（工种）", "级别", "批次", "认定人数", "合格人数", "合格率"]):
            cell.text = text
        for row in inst.by_occupation_level:
            occupation = row["occupation_name"] + (f"（{row['work_type']}）" if row["work_type"] else "")
            values = [occupation, LEVELS_ZH.get(row["level"], str(row["level"])), str(row["batches"]),
                      str(row["candidates"] or 0), str(row["passed"] or 0), _rate(row["passed"], row["candidates"])]
            for cell, text in zip(table.add_row().cells, values):
                cell.text = text
    added = facts.get("occupations_added") or 0
    doc.add_paragraph(
        f"新增职业（工种）：备案有效期内新增{added}个：{facts.get('occupations_added_list')}。" if added
        else "新增职业（工种）：备案有效期内无新增。")
    doc.add_paragraph("更改评价方式或变更申报条件情况：（请填写；无则写“无”）")

    doc.add_paragraph("二、存在问题", heading[2])
    notices = facts.get("rectification_notices") or 0
    doc.add_paragraph(
        f"整改情况：备案有效期内收到整改通知{notices}份，已完成整改{facts.get('rectifications_completed') or 0}份："
        f"{facts.get('rectification_list')}。" if notices else "整改情况：备案有效期内未收到整改通知。")
    doc.add_paragraph("开展认定工作存在的问题（困难）：（请填写。如存在不可抗力无法开展认定工作的，需说明。）")

    doc.add_paragraph("三、下阶段工作", heading[2])
    doc.add_paragraph("（请填写：下一个备案期拓展认定业务、完善认定制度规范、改进认定工作流程的计划。）")

    raw = io.BytesIO()
    doc.save(raw)
    return fixed_zip(raw.getvalue(), stamp)


def institution_forms(inst: Institution, as_of: dt.date) -> tuple[bytes, bytes]:
    """附件1 and 附件2 of one institution."""
    return annex1_xlsx(inst, as_of), annex2_docx(inst, as_of)


def build_forms(institutions: list[Institution], as_of: dt.date, workers: int | None = None) -> list[tuple[bytes, bytes]]:
    """Each institution's forms, in order. With hundreds to make (a province's reminders: about 550
    institutions, 50 s in one process), one worker process per core makes a share of them: `python -m
    publish.forms`, institutions in and forms out as pickles over its pipes. (Not multiprocessing: a fork would
    carry, and be counted for, all of the Airflow task's memory; a spawn re-imports the caller's main script.)"""
    if workers is None:
        workers = min(os.cpu_count() or 1, len(institutions) // FORMS_PER_WORKER)
    if workers < 2:
        return [institution_forms(inst, as_of) for inst in institutions]
    size = -(-len(institutions) // workers)
    shares = [institutions[i:i + size] for i in range(0, len(institutions), size)]
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))

    def make(share: list[Institution]) -> list[tuple[bytes, bytes]]:
        worker = subprocess.run([sys.executable, "-m", "publish.forms"], input=pickle.dumps((share, as_of)),
                                capture_output=True, env=env, check=False)
        if worker.returncode != 0:
            raise RuntimeError(f"the forms worker for {share[0].institution_id}…{share[-1].institution_id} "
                               f"failed: {worker.stderr.decode(errors='replace')[-2000:]}")
        return pickle.loads(worker.stdout)

    with ThreadPoolExecutor(len(shares)) as pool:
        return [forms for share in pool.map(make, shares) for forms in share]


if __name__ == "__main__":  # a worker of build_forms
    share, day = pickle.load(sys.stdin.buffer)
    pickle.dump([institution_forms(inst, day) for inst in share], sys.stdout.buffer)
