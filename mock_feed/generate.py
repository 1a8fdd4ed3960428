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
from typing import NamedTuple, TextIO

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

# Lifecycle targets: where an institution's expires_on falls relative to the as-of date (see module docstring).
# The first institutions take one target each, in LIFECYCLE_FIRST order, so that even a small dataset has every
# stage; the rest are drawn by LIFECYCLE_WEIGHTS (the dict's order is the order of the weighted draw).
LIFECYCLE_WEIGHTS = {
    "not_yet_due": 28,
    "soon": 6,
    "window": 26,
    "grace": 12,
    "abandoned": 12,
    "cohort": 6,
    "terminated": 5,
    "long_gone": 5,
}
LIFECYCLE_FIRST = ["window", "grace", "abandoned", "cohort", "terminated", "soon", "not_yet_due", "long_gone"]
# Days from the as-of date to expires_on, drawn uniformly in [low, high] for each target. A range, not a
# callable per target, so that choosing the target's range draws nothing: one randint, for that target only.
EXPIRY_OFFSET_DAYS = {
    "not_yet_due": (121, 800),
    "soon": (91, 120),
    "window": (0, 90),
    "grace": (-60, -1),
    "abandoned": (-90, -61),
    "long_gone": (-500, -91),
    "cohort": (0, 200),
    "terminated": (-200, 600),
}


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
    target: str = ""  # its lifecycle target (a key of LIFECYCLE_WEIGHTS), which its centre records follow
    occupations: list[dict] = field(default_factory=list)
    completed_plans: list[dict] = field(default_factory=list)


@dataclass
class CertificateSeries:
    """What all certificates of one institution share: the number's prefix (Y for employers, S otherwise), its
    issuer code and a running serial per (two-digit year, level), and the institution's data faults: batches that
    report fewer certificates than passed (missing_data), certificates that cannot be queried (unqueryable)."""

    prefix: str
    issuer: str
    missing_data: bool
    unqueryable: bool
    serials: dict[tuple[int, int], int] = field(default_factory=dict)

    def next_number(self, institution_serial: int, year: int, level: int) -> str:
        key = (year % 100, level)
        self.serials[key] = self.serials.get(key, 0) + 1
        return (
            f"{self.prefix}{self.issuer}35{institution_serial:06d}{key[0]:02d}{level}{self.serials[key]:06d}"
        )


class RenewalDates(NamedTuple):
    """When an institution may apply to renew (window_opens … apply_by) and when its grace period ends (R-DATES)."""

    window_opens: dt.date
    apply_by: dt.date
    grace_ends: dt.date


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
        for serial in range(1, self.count + 1):
            self.institutions.append(self.make_institution(serial))

    def make_institution(self, serial: int) -> Institution:
        """Institution number `serial`. The dataset is a function of the seed through the order of the random
        draws, so this order (centre, target, kind, period, name, status, region, contacts, address, update
        time) is part of the output: keep it when changing anything here."""
        centre = self.rng.choices(list(CENTRES), CENTRE_WEIGHTS)[0]
        target = self.lifecycle_target(serial - 1)
        # the first enterprise batch (cohort) is made of employers only
        kind = (
            "employer"
            if target == "cohort"
            else self.rng.choices(["employer", "school", "social_org"], [45, 25, 30])[0]
        )
        registered_on, expires_on = self.registration_period(target)
        name = self.institution_name(kind, CENTRES[centre][0], serial)
        status = "active"
        if target == "terminated":
            status = self.rng.choice(["terminated", "voluntarily_terminated"])
        region = self.rng.choice(REGIONS[centre])
        record = {
            "institution_id": f"35{serial:06d}",
            "name": name,
            "institution_type": kind,
            "registration_no": f"闽技鉴备〔{registered_on.year}〕{serial:04d}号",
            "supervising_centre": centre,
            "region_code": region,
            "registered_on": registered_on.isoformat(),
            "expires_on": expires_on.isoformat(),
            "cohort": COHORT if target == "cohort" else None,
            "status": status,
            **self.contacts(serial),
            "address": self.address(centre),
            "updated_at": timestamp(
                min(registered_on + DAY * self.rng.randint(0, 30), self.as_of), self.rng.randint(0, 86399)
            ),
        }
        return Institution(record, serial, registered_on, expires_on, target=target)

    def lifecycle_target(self, index: int) -> str:
        """The lifecycle target of the institution at `index` (from 0): one of each stage first, then by weight."""
        if index < len(LIFECYCLE_FIRST):
            return LIFECYCLE_FIRST[index]
        return self.rng.choices(list(LIFECYCLE_WEIGHTS), list(LIFECYCLE_WEIGHTS.values()))[0]

    def registration_period(self, target: str) -> tuple[dt.date, dt.date]:
        """(registered_on, expires_on) of a three-year registration whose expiry falls in the target's range. The
        first enterprise batch was registered by January 2021 at the latest, whatever its expiry."""
        expires_on = self.as_of + DAY * self.rng.randint(*EXPIRY_OFFSET_DAYS[target])
        registered_on = add_years(expires_on, -3) + DAY
        if target == "cohort":
            registered_on = min(registered_on, dt.date(2020, 12, 1) + DAY * self.rng.randint(0, 60))
        return registered_on, expires_on

    def institution_name(self, kind: str, city: str, serial: int) -> str:
        """A name in the style of the kind of institution, made unique with the serial if already taken."""
        if kind == "employer":
            name = f"{city}{self.rng.choice(BRAND_WORDS)}{self.rng.choice(INDUSTRY_WORDS)}有限公司"
        elif kind == "school":
            name = f"{city}{self.rng.choice(['市', '', '工贸', '信息', '海洋', '经贸'])}{self.rng.choice(SCHOOL_KINDS)}"
        else:
            name = f"{city}{self.rng.choice(BRAND_WORDS)}{self.rng.choice(SOCIAL_KINDS)}"
        if any(inst.record["name"] == name for inst in self.institutions):
            return f"{name}（{serial}）"
        return name

    def contacts(self, serial: int) -> dict[str, str]:
        """The responsible and the contact person with their phones, and the mailbox. The contact's name is drawn
        first though listed after the responsible person's: that is the seeded draw order."""
        contact = self.person_name()
        return {
            "responsible_person": self.person_name(),
            "responsible_phone": self.phone(),
            "contact_person": contact,
            "contact_phone": self.phone(),
            "email": f"pj{serial:06d}@example.com.cn",
        }

    def address(self, centre: str) -> str:
        city = "福州" if centre == "350000" else CENTRES[centre][0]  # the provincial centre sits in Fuzhou
        return f"福建省{city}市{self.rng.choice(BRAND_WORDS)}路{self.rng.randint(1, 999)}号"

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
        """The institution's assessment plans, and the certificates of the completed ones (written out as made).
        The order of the random draws is part of the output: count, series, dates, then plan after plan."""
        n_completed = self.rng.choice([0, 2, 3, 4, 5, 6, 6, 7, 8, 9, 10, 11, 12, 14])
        series = self.certificate_series(inst)
        for k, (assessment_date, status) in enumerate(self.plan_specs(inst, n_completed)):
            plan = self.plan_record(inst, k, assessment_date, status)
            self.plans.append(plan)
            if status == "completed":
                inst.completed_plans.append(plan)
                self.issue_certificates(inst, plan, assessment_date, series)

    def certificate_series(self, inst: Institution) -> CertificateSeries:
        return CertificateSeries(
            prefix="Y" if inst.record["institution_type"] == "employer" else "S",
            issuer=f"{self.rng.randint(1000, 9999)}",
            missing_data=self.rng.random() < 0.08,
            unqueryable=self.rng.random() < 0.06,
        )

    def plan_specs(self, inst: Institution, n_completed: int) -> list[tuple[dt.date, str]]:
        """(assessment date, status) of each plan, by date: the completed ones within the period up to the as-of
        date, maybe one planned ahead and one cancelled, and rarely one completed after expiry."""
        end = min(inst.expires_on, self.as_of)
        specs = [(self.day_between(inst.registered_on, end), "completed") for _ in range(n_completed)]
        if self.rng.random() < 0.3:
            specs.append((self.as_of + DAY * self.rng.randint(5, 60), "planned"))
        if self.rng.random() < 0.2:
            specs.append((self.day_between(inst.registered_on, end), "cancelled"))
        if inst.expires_on < self.as_of and self.rng.random() < 0.06:  # post-expiry anomaly (R-POST)
            specs.append((self.day_between(inst.expires_on + DAY, self.as_of), "completed"))
        return sorted(specs)

    def plan_record(self, inst: Institution, k: int, assessment_date: dt.date, status: str) -> dict:
        """The institution's plan number k (from 0), for one of the occupations registered by its assessment date
        (any of its occupations if none was yet); only a completed plan has passed candidates."""
        eligible_occ = [o for o in inst.occupations if o["registered_on"] <= assessment_date.isoformat()]
        occ = self.rng.choice(eligible_occ or inst.occupations)
        level = self.rng.choices([1, 2, 3, 4, 5], [2, 8, 25, 35, 30])[0]
        candidates = round(self.rng.randint(30, 170) * self.candidates_scale)
        passed = round(candidates * self.rng.uniform(0.6, 0.98)) if status == "completed" else 0
        online = status == "completed" and self.rng.random() < 0.97
        return {
            "plan_no": f"PJ{assessment_date.year}{inst.serial:06d}{k + 1:03d}",
            "institution_id": inst.record["institution_id"],
            "occupation_code": occ["occupation_code"],
            "occupation_name": occ["occupation_name"],
            "work_type": occ["work_type"],
            "level": level,
            "assessment_date": assessment_date.isoformat(),
            "status": status,
            "candidates": candidates,
            "passed": passed,
            "certificates_online": online,
            "updated_at": timestamp(min(assessment_date + DAY * 3, self.as_of), self.rng.randint(0, 86399)),
        }

    def issue_certificates(
        self, inst: Institution, plan: dict, assessment_date: dt.date, series: CertificateSeries
    ) -> None:
        """Write the certificates of a completed plan if issued by the as-of date: 5 to 25 days after the
        assessment, and by the expiry date unless the assessment itself came after it."""
        issued_on = assessment_date + DAY * self.rng.randint(5, 25)
        if assessment_date <= inst.expires_on:
            issued_on = min(issued_on, inst.expires_on)  # only the post-expiry anomaly reports late
        if issued_on > self.as_of:
            return  # certificates not issued yet
        to_issue, queryable = self.certificate_counts(plan["passed"], series)
        region = inst.record["region_code"]
        for n in range(to_issue):
            cert = {
                "certificate_no": series.next_number(inst.serial, assessment_date.year, plan["level"]),
                "plan_no": plan["plan_no"],
                "institution_id": inst.record["institution_id"],
                "occupation_code": plan["occupation_code"],
                "level": plan["level"],
                "issued_on": issued_on.isoformat(),
                "holder_name": self.person_name(),
                "holder_id_no": self.resident_id(region),
                "updated_at": timestamp(issued_on, 36000 + n),
            }
            if n >= queryable:
                cert["_queryable"] = False
            self.certificates_out.write(json_line(cert))
            self.certificate_count += 1

    def certificate_counts(self, passed: int, series: CertificateSeries) -> tuple[int, int]:
        """(certificates reported, how many of the first of them can be queried): one per passed candidate, unless
        the institution's data faults leave a few out of the report, or leave the last few unqueryable."""
        to_issue = passed
        if series.missing_data and self.rng.random() < 0.4:
            to_issue = max(0, passed - self.rng.randint(1, 5))
        if series.unqueryable and self.rng.random() < 0.4:
            return to_issue, to_issue - self.rng.randint(1, 3)
        return to_issue, to_issue

    # -- centre records --------------------------------------------------------------------------------
    def make_centre_records(self, inst: Institution) -> None:
        """The centre's records about the institution. Each kind draws from the seeded generator in turn, so the
        order of these calls is part of the output."""
        dates = self.renewal_dates(inst)
        self.make_applications(inst, dates)
        self.make_rectification_notice(inst)
        self.make_disciplinary_case(inst)
        self.make_termination(inst)
        self.make_change_request(inst, dates.window_opens)

    def renewal_dates(self, inst: Institution) -> RenewalDates:
        """The window is the 90 days before expiry, except for the first enterprise batch, whose window and
        deadline were fixed (cohort override); the grace period runs 60 days past expiry."""
        window_opens, apply_by = inst.expires_on - DAY * 90, inst.expires_on
        if inst.record["cohort"]:
            window_opens, apply_by = COHORT_WINDOW_OPENS, min(dt.date(2022, 12, 31), inst.expires_on)
        return RenewalDates(window_opens, apply_by, inst.expires_on + DAY * 60)

    def make_applications(self, inst: Institution, dates: RenewalDates) -> None:
        """The renewal applications: rarely one sent before the window opens (too early), then the one the
        institution's lifecycle target calls for, if any."""
        apps = self.records["renewal_applications"]
        received = self.application_received(inst.target, dates)
        if inst.target in ("soon", "window") and self.rng.random() < 0.06:
            early = dates.window_opens - DAY * self.rng.randint(1, 30)
            if early <= self.as_of:
                apps.append(self.application(inst, early))
        if received is not None:
            apps.append(self.application(inst, received))

    def application_received(self, target: str, dates: RenewalDates) -> dt.date | None:
        """When the application the target calls for was received, or None if it has none (yet)."""
        D = self.as_of
        r = self.rng.random()
        if target in ("window", "grace", "terminated") and dates.window_opens <= D and r < 0.6:
            return self.day_between(dates.window_opens, min(D, dates.grace_ends))
        if target == "cohort" and dates.apply_by < D and r < 0.5:
            return self.day_between(dates.window_opens, dates.apply_by)
        if target == "abandoned" and r < 0.15:
            return self.day_between(dates.grace_ends + DAY, D)  # late (R-APP)
        if target in ("abandoned", "long_gone") and r < 0.7:
            return self.day_between(dates.window_opens, min(D, dates.grace_ends))  # completed its renewal
        return None

    def make_rectification_notice(self, inst: Institution) -> None:
        """Sometimes a quality supervision rectification notice (R-REJECT-1) within the period: mostly completed
        within weeks, some only after expiry, the rest still open."""
        if self.rng.random() < 0.1:
            issued = self.day_between(inst.registered_on, min(inst.expires_on, self.as_of))
            choice = self.rng.random()
            completed = None
            if choice < 0.6:
                completed = min(issued + DAY * self.rng.randint(5, 40), self.as_of)
            elif choice < 0.8:
                completed = inst.expires_on + DAY * self.rng.randint(1, 30)
                completed = completed if completed <= self.as_of else None
            notices = self.records["rectification_notices"]
            notices.append(
                {
                    "notice_id": f"ZG{issued.year}{len(notices) + 1:05d}",
                    "institution_id": inst.record["institution_id"],
                    "issued_on": issued.isoformat(),
                    "due_on": (issued + DAY * 30).isoformat(),
                    "completed_on": completed.isoformat() if completed else "",
                }
            )

    def make_disciplinary_case(self, inst: Institution) -> None:
        """Rarely a disciplinary case; half of them under article 14, which terminates the registration
        (R-REJECT-3)."""
        if self.rng.random() < 0.04:
            opened = self.day_between(inst.registered_on, self.as_of)
            terminates = self.rng.random() < 0.5
            closed = opened + DAY * self.rng.randint(10, 90)
            cases = self.records["disciplinary_cases"]
            cases.append(
                {
                    "case_id": f"WJ{opened.year}{len(cases) + 1:04d}",
                    "institution_id": inst.record["institution_id"],
                    "opened_on": opened.isoformat(),
                    "article": "第十四条"
                    if terminates
                    else self.rng.choice(["第十一条", "第十二条", "第十三条"]),
                    "terminates_registration": "true" if terminates else "false",
                    "closed_on": closed.isoformat() if closed <= self.as_of else "",
                }
            )

    def make_termination(self, inst: Institution) -> None:
        """A termination record for every terminated institution, and for a few active ones: a termination the
        feed's status does not show yet (R-STAGE counts the record too)."""
        rec = inst.record
        if rec["status"] != "active" or self.rng.random() < 0.02:
            self.records["terminations"].append(
                {
                    "institution_id": rec["institution_id"],
                    "notified_on": self.day_between(inst.registered_on, self.as_of).isoformat(),
                    "reason": "机构申请终止备案"
                    if rec["status"] == "voluntarily_terminated"
                    else "违规终结备案",
                }
            )

    def make_change_request(self, inst: Institution, window_opens: dt.date) -> None:
        """Sometimes an occupation change request; some fall in the renewal window, when changes are frozen
        (R-FREEZE)."""
        if self.rng.random() < 0.12:
            received = self.day_between(inst.registered_on, self.as_of)
            if self.rng.random() < 0.4 and window_opens <= self.as_of:
                received = self.day_between(window_opens, min(inst.expires_on, self.as_of))  # freeze breach
            occ = self.rng.choice(OCCUPATIONS)
            requests = self.records["occupation_change_requests"]
            requests.append(
                {
                    "request_id": f"BG{received.year}{len(requests) + 1:05d}",
                    "institution_id": inst.record["institution_id"],
                    "received_on": received.isoformat(),
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
