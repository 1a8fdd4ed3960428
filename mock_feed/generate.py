"""Generate a realistic, deterministic dataset directory (docs/contract.md §3) for a given as-of date.

Registration periods are placed relative to the as-of date so that every lifecycle stage of docs/rules.md
occurs: institutions not yet due, in the renewal window, overdue (cohort override), in grace, abandoned,
terminated, under review, renewed and rejected.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from mock_feed.reference import (
    BRAND_WORDS,
    CENTRE_WEIGHTS,
    CENTRES,
    GIVEN_CHARS,
    INDUSTRY_WORDS,
    OCCUPATIONS,
    REGIONS,
    SCHOOL_KINDS,
    SOCIAL_KINDS,
    SURNAMES,
)

DAY = dt.timedelta(days=1)
TZ = "+08:00"
ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
ID_CHECK = "10X98765432"
COHORT = "first_enterprise_batch"
COHORT_WINDOW_OPENS = dt.date(2022, 12, 15)


def resident_id_check_digit(first17: str) -> str:
    """ISO 7064 MOD 11-2 check digit of a PRC resident ID number (GB 11643)."""
    return ID_CHECK[sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS, strict=False)) % 11]


def timestamp(day: dt.date, seconds: int) -> str:
    t = dt.datetime.combine(day, dt.time()) + dt.timedelta(seconds=seconds % 86400)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + TZ


def add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


@dataclass
class Institution:
    record: dict
    serial: int
    registered_on: dt.date
    expires_on: dt.date
    occupations: list[dict] = field(default_factory=list)
    completed_plans: list[dict] = field(default_factory=list)


class DatasetGenerator:
    """Certificates are the bulk of the data (millions at province scale), so they are written to
    `certificates_out` as they are made rather than kept; everything else is kept and written by `write`."""

    def __init__(
        self, as_of: dt.date, institutions: int, seed: int, candidates_scale: float, certificates_out: TextIO
    ) -> None:
        self.as_of = as_of
        self.candidates_scale = candidates_scale  # bigger plans, for benchmarks; 1.0 keeps the usual data
        self.count = institutions
        self.rng = random.Random(f"{seed}:{as_of.isoformat()}:{institutions}")
        self.institutions: list[Institution] = []
        self.plans: list[dict] = []
        self.certificates_out = certificates_out
        self.certificate_count = 0
        self.occupations: list[dict] = []
        self.records: dict[str, list[dict]] = {
            "renewal_applications": [],
            "rectification_notices": [],
            "disciplinary_cases": [],
            "terminations": [],
            "occupation_change_requests": [],
        }

    # -- helpers --------------------------------------------------------------------------------------
    def day_between(self, start: dt.date, end: dt.date) -> dt.date:
        if end <= start:
            return start
        return start + DAY * self.rng.randint(0, (end - start).days)

    def person_name(self) -> str:
        given = "".join(self.rng.choice(GIVEN_CHARS) for _ in range(self.rng.choice((1, 2, 2))))
        return self.rng.choice(SURNAMES) + given

    def resident_id(self, region: str) -> str:
        birth = dt.date(1965, 1, 1) + DAY * self.rng.randint(0, 14000)
        first17 = f"{region}{birth:%Y%m%d}{self.rng.randint(0, 999):03d}"
        return first17 + resident_id_check_digit(first17)

    def phone(self) -> str:
        return f"1{self.rng.choice('3456789')}{self.rng.randint(0, 999_999_999):09d}"

    # -- institutions ----------------------------------------------------------------------------------
    def make_institutions(self) -> None:
        centres = list(CENTRES)
        # Lifecycle targets as offsets of expires_on from the as-of date (see module docstring).
        # Lifecycle targets as offsets of expires_on from the as-of date. The first institutions take one
        # target each so that even a small dataset has every stage; the rest are drawn by weight.
        weights = {
            "not_yet_due": 28,
            "soon": 6,
            "window": 26,
            "grace": 12,
            "abandoned": 12,
            "cohort": 6,
            "terminated": 5,
            "long_gone": 5,
        }
        order = ["window", "grace", "abandoned", "cohort", "terminated", "soon", "not_yet_due", "long_gone"]
        for i in range(self.count):
            serial = i + 1
            centre = self.rng.choices(centres, CENTRE_WEIGHTS)[0]
            city = CENTRES[centre][0]
            target = (
                order[i] if i < len(order) else self.rng.choices(list(weights), list(weights.values()))[0]
            )
            kind = (
                "employer"
                if target == "cohort"
                else self.rng.choices(["employer", "school", "social_org"], [45, 25, 30])[0]
            )
            offset = {
                "not_yet_due": lambda: self.rng.randint(121, 800),
                "soon": lambda: self.rng.randint(91, 120),
                "window": lambda: self.rng.randint(0, 90),
                "grace": lambda: self.rng.randint(-60, -1),
                "abandoned": lambda: self.rng.randint(-90, -61),
                "long_gone": lambda: self.rng.randint(-500, -91),
                "cohort": lambda: self.rng.randint(0, 200),
                "terminated": lambda: self.rng.randint(-200, 600),
            }[target]()
            expires_on = self.as_of + DAY * offset
            registered_on = add_years(expires_on, -3) + DAY
            cohort = None
            if target == "cohort":
                cohort = COHORT
                registered_on = min(registered_on, dt.date(2020, 12, 1) + DAY * self.rng.randint(0, 60))
            if kind == "employer":
                name = f"{city}{self.rng.choice(BRAND_WORDS)}{self.rng.choice(INDUSTRY_WORDS)}有限公司"
            elif kind == "school":
                name = f"{city}{self.rng.choice(['市', '', '工贸', '信息', '海洋', '经贸'])}{self.rng.choice(SCHOOL_KINDS)}"
            else:
                name = f"{city}{self.rng.choice(BRAND_WORDS)}{self.rng.choice(SOCIAL_KINDS)}"
            status = "active"
            if target == "terminated":
                status = self.rng.choice(["terminated", "voluntarily_terminated"])
            region = self.rng.choice(REGIONS[centre])
            contact = self.person_name()
            record = {
                "institution_id": f"35{serial:06d}",
                "name": f"{name}（{serial}）"
                if any(inst.record["name"] == name for inst in self.institutions)
                else name,
                "institution_type": kind,
                "registration_no": f"闽技鉴备〔{registered_on.year}〕{serial:04d}号",
                "supervising_centre": centre,
                "region_code": region,
                "registered_on": registered_on.isoformat(),
                "expires_on": expires_on.isoformat(),
                "cohort": cohort,
                "status": status,
                "responsible_person": self.person_name(),
                "responsible_phone": self.phone(),
                "contact_person": contact,
                "contact_phone": self.phone(),
                "email": f"pj{serial:06d}@example.com.cn",
                "address": f"福建省{'福州' if centre == '350000' else city}市{self.rng.choice(BRAND_WORDS)}路{self.rng.randint(1, 999)}号",
                "updated_at": timestamp(
                    min(registered_on + DAY * self.rng.randint(0, 30), self.as_of), self.rng.randint(0, 86399)
                ),
            }
            inst = Institution(record, serial, registered_on, expires_on)
            inst.target = target  # type: ignore[attr-defined]
            self.institutions.append(inst)

    # -- registered occupations ------------------------------------------------------------------------
    def make_occupations(self, inst: Institution) -> None:
        picks = self.rng.sample(OCCUPATIONS, self.rng.choice([1, 2, 2, 3, 3, 4]))
        for k, (code, name, work_type) in enumerate(picks):
            registered_on = inst.registered_on
            if k > 0 and self.rng.random() < 0.3:  # added during the period (R-OCC)
                last = min(inst.expires_on, self.as_of) - DAY * 20
                registered_on = self.day_between(inst.registered_on + DAY * 90, last)
            occ = {
                "institution_id": inst.record["institution_id"],
                "occupation_code": code,
                "occupation_name": name,
                "work_type": work_type,
                "registered_on": registered_on.isoformat(),
                "updated_at": timestamp(min(registered_on, self.as_of), self.rng.randint(0, 86399)),
            }
            inst.occupations.append(occ)
            self.occupations.append(occ)

    # -- plans and certificates ------------------------------------------------------------------------
    def make_plans(self, inst: Institution) -> None:
        iid = inst.record["institution_id"]
        end = min(inst.expires_on, self.as_of)
        n_completed = self.rng.choice([0, 2, 3, 4, 5, 6, 6, 7, 8, 9, 10, 11, 12, 14])
        prefix = "Y" if inst.record["institution_type"] == "employer" else "S"
        issuer = f"{self.rng.randint(1000, 9999)}"
        missing_data = self.rng.random() < 0.08
        unqueryable = self.rng.random() < 0.06
        serials: dict[tuple[int, int], int] = {}
        plan_specs: list[tuple[dt.date, str]] = [
            (self.day_between(inst.registered_on, end), "completed") for _ in range(n_completed)
        ]
        if self.rng.random() < 0.3:
            plan_specs.append((self.as_of + DAY * self.rng.randint(5, 60), "planned"))
        if self.rng.random() < 0.2:
            plan_specs.append((self.day_between(inst.registered_on, end), "cancelled"))
        if inst.expires_on < self.as_of and self.rng.random() < 0.06:  # post-expiry anomaly (R-POST)
            plan_specs.append((self.day_between(inst.expires_on + DAY, self.as_of), "completed"))
        plan_specs.sort()
        for k, (assessment_date, status) in enumerate(plan_specs):
            eligible_occ = [o for o in inst.occupations if o["registered_on"] <= assessment_date.isoformat()]
            code, name, work_type = None, None, None
            occ = self.rng.choice(eligible_occ or inst.occupations)
            code, name, work_type = occ["occupation_code"], occ["occupation_name"], occ["work_type"]
            level = self.rng.choices([1, 2, 3, 4, 5], [2, 8, 25, 35, 30])[0]
            candidates = round(self.rng.randint(30, 170) * self.candidates_scale)
            passed = round(candidates * self.rng.uniform(0.6, 0.98)) if status == "completed" else 0
            plan_no = f"PJ{assessment_date.year}{inst.serial:06d}{k + 1:03d}"
            online = status == "completed" and self.rng.random() < 0.97
            plan = {
                "plan_no": plan_no,
                "institution_id": iid,
                "occupation_code": code,
                "occupation_name": name,
                "work_type": work_type,
                "level": level,
                "assessment_date": assessment_date.isoformat(),
                "status": status,
                "candidates": candidates,
                "passed": passed,
                "certificates_online": online,
                "updated_at": timestamp(
                    min(assessment_date + DAY * 3, self.as_of), self.rng.randint(0, 86399)
                ),
            }
            self.plans.append(plan)
            if status != "completed":
                continue
            inst.completed_plans.append(plan)
            issued_on = assessment_date + DAY * self.rng.randint(5, 25)
            if assessment_date <= inst.expires_on:
                issued_on = min(issued_on, inst.expires_on)  # only the post-expiry anomaly reports late
            if issued_on > self.as_of:
                continue  # certificates not issued yet
            to_issue = passed
            if missing_data and self.rng.random() < 0.4:
                to_issue = max(0, passed - self.rng.randint(1, 5))
            unq_from = (
                to_issue - self.rng.randint(1, 3) if unqueryable and self.rng.random() < 0.4 else to_issue
            )
            key = (assessment_date.year % 100, level)
            region = inst.record["region_code"]
            for n in range(to_issue):
                serials[key] = serials.get(key, 0) + 1
                cert = {
                    "certificate_no": f"{prefix}{issuer}35{inst.serial:06d}{key[0]:02d}{level}{serials[key]:06d}",
                    "plan_no": plan_no,
                    "institution_id": iid,
                    "occupation_code": code,
                    "level": level,
                    "issued_on": issued_on.isoformat(),
                    "holder_name": self.person_name(),
                    "holder_id_no": self.resident_id(region),
                    "updated_at": timestamp(issued_on, 36000 + n),
                }
                if n >= unq_from:
                    cert["_queryable"] = False
                self.certificates_out.write(json_line(cert))
                self.certificate_count += 1

    # -- centre records --------------------------------------------------------------------------------
    def make_centre_records(self, inst: Institution) -> None:
        rec = inst.record
        iid = rec["institution_id"]
        D = self.as_of
        window_opens = inst.expires_on - DAY * 90
        apply_by = inst.expires_on
        if rec["cohort"]:
            window_opens, apply_by = COHORT_WINDOW_OPENS, min(dt.date(2022, 12, 31), inst.expires_on)
        grace_ends = inst.expires_on + DAY * 60
        apps = self.records["renewal_applications"]
        target = inst.target  # type: ignore[attr-defined]
        received = None
        r = self.rng.random()
        if target in ("window", "grace", "terminated") and window_opens <= D and r < 0.6:
            received = self.day_between(window_opens, min(D, grace_ends))
        elif target == "cohort" and apply_by < D and r < 0.5:
            received = self.day_between(window_opens, apply_by)
        elif target == "abandoned" and r < 0.15:
            received = self.day_between(grace_ends + DAY, D)  # late (R-APP)
        elif target in ("abandoned", "long_gone") and r < 0.7:
            received = self.day_between(window_opens, min(D, grace_ends))  # completed its renewal
        if target in ("soon", "window") and self.rng.random() < 0.06:
            early = window_opens - DAY * self.rng.randint(1, 30)
            if early <= D:
                apps.append(self.application(inst, early))
        if received is not None:
            apps.append(self.application(inst, received))

        if self.rng.random() < 0.1:  # quality supervision rectification (R-REJECT-1)
            issued = self.day_between(inst.registered_on, min(inst.expires_on, D))
            choice = self.rng.random()
            completed = None
            if choice < 0.6:
                completed = min(issued + DAY * self.rng.randint(5, 40), D)
            elif choice < 0.8:
                completed = inst.expires_on + DAY * self.rng.randint(1, 30)
                completed = completed if completed <= D else None
            self.records["rectification_notices"].append(
                {
                    "notice_id": f"ZG{issued.year}{len(self.records['rectification_notices']) + 1:05d}",
                    "institution_id": iid,
                    "issued_on": issued.isoformat(),
                    "due_on": (issued + DAY * 30).isoformat(),
                    "completed_on": completed.isoformat() if completed else "",
                }
            )
        if self.rng.random() < 0.04:
            opened = self.day_between(inst.registered_on, D)
            terminates = self.rng.random() < 0.5
            closed = opened + DAY * self.rng.randint(10, 90)
            self.records["disciplinary_cases"].append(
                {
                    "case_id": f"WJ{opened.year}{len(self.records['disciplinary_cases']) + 1:04d}",
                    "institution_id": iid,
                    "opened_on": opened.isoformat(),
                    "article": "第十四条"
                    if terminates
                    else self.rng.choice(["第十一条", "第十二条", "第十三条"]),
                    "terminates_registration": "true" if terminates else "false",
                    "closed_on": closed.isoformat() if closed <= D else "",
                }
            )
        if rec["status"] != "active" or self.rng.random() < 0.02:
            self.records["terminations"].append(
                {
                    "institution_id": iid,
                    "notified_on": self.day_between(inst.registered_on, D).isoformat(),
                    "reason": "机构申请终止备案"
                    if rec["status"] == "voluntarily_terminated"
                    else "违规终结备案",
                }
            )
        if self.rng.random() < 0.12:
            received_cr = self.day_between(inst.registered_on, D)
            if self.rng.random() < 0.4 and window_opens <= D:
                received_cr = self.day_between(window_opens, min(inst.expires_on, D))  # freeze breach
            occ = self.rng.choice(OCCUPATIONS)
            self.records["occupation_change_requests"].append(
                {
                    "request_id": f"BG{received_cr.year}{len(self.records['occupation_change_requests']) + 1:05d}",
                    "institution_id": iid,
                    "received_on": received_cr.isoformat(),
                    "change_type": self.rng.choice(["add", "change"]),
                    "occupation_code": occ[0],
                }
            )

    def application(self, inst: Institution, received: dt.date) -> dict:
        rec = inst.record
        D = self.as_of
        result, completed = "", ""
        if received + DAY * 10 <= D and self.rng.random() < 0.7:
            done = received + DAY * self.rng.randint(10, 50)
            if done <= D:
                result = "approved" if self.rng.random() < 0.8 else "rejected"
                completed = done.isoformat()
        codes = ""
        if len(inst.occupations) > 1 and self.rng.random() < 0.3:
            listed = inst.occupations[:-1] if self.rng.random() < 0.5 else inst.occupations
            codes = ";".join(o["occupation_code"] for o in listed)
        few_batches = len(inst.completed_plans) < 6
        n = len(self.records["renewal_applications"]) + 1
        return {
            "application_id": f"XQ{received.year}{n:05d}",
            "institution_id": rec["institution_id"],
            "received_on": received.isoformat(),
            "incentive_evidence": "true"
            if rec["institution_type"] != "employer" or self.rng.random() < 0.85
            else "false",
            "force_majeure_statement": "true" if few_batches and self.rng.random() < 0.5 else "false",
            "occupation_codes": codes,
            "review_result": result,
            "review_completed_on": completed,
        }

    # -- output ----------------------------------------------------------------------------------------
    def generate(self) -> None:
        self.make_institutions()
        for inst in self.institutions:
            self.make_occupations(inst)
            self.make_plans(inst)
            self.make_centre_records(inst)

    def write(self, out: Path) -> dict[str, int]:
        out.mkdir(parents=True, exist_ok=True)
        files = {
            "institutions.jsonl": [i.record for i in self.institutions],
            "registered_occupations.jsonl": self.occupations,
            "plans.jsonl": self.plans,
        }
        counts = {}
        for name, rows in files.items():
            with open(out / name, "w", encoding="utf-8") as fh:
                fh.writelines(json_line(r) for r in rows)
            counts[name] = len(rows)
        counts["certificates.jsonl"] = self.certificate_count
        centre = out / "centre_records"
        centre.mkdir(exist_ok=True)
        for kind, rows in self.records.items():
            columns = CENTRE_COLUMNS[kind]
            with open(centre / f"{kind}.csv", "w", encoding="utf-8", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
                writer.writeheader()
                writer.writerows(rows)
            counts[f"centre_records/{kind}.csv"] = len(rows)
        return counts


def json_line(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


CENTRE_COLUMNS = {
    "renewal_applications": [
        "application_id",
        "institution_id",
        "received_on",
        "incentive_evidence",
        "force_majeure_statement",
        "occupation_codes",
        "review_result",
        "review_completed_on",
    ],
    "rectification_notices": ["notice_id", "institution_id", "issued_on", "due_on", "completed_on"],
    "disciplinary_cases": [
        "case_id",
        "institution_id",
        "opened_on",
        "article",
        "terminates_registration",
        "closed_on",
    ],
    "terminations": ["institution_id", "notified_on", "reason"],
    "occupation_change_requests": [
        "request_id",
        "institution_id",
        "received_on",
        "change_type",
        "occupation_code",
    ],
}


def generate_dataset(
    out: Path, as_of: dt.date, institutions: int = 200, seed: int = 2022, candidates_scale: float = 1.0
) -> dict[str, int]:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "certificates.jsonl", "w", encoding="utf-8") as certificates:
        gen = DatasetGenerator(as_of, institutions, seed, candidates_scale, certificates)
        gen.generate()
    return gen.write(out)
