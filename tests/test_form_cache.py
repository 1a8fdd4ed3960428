"""The reminder forms' cache (publish/form_cache.py): the bytes it gives are the builder's, whether the cache was
empty or full; a changed input remakes exactly that institution's forms; a damaged entry is made again, never
exported; and it keeps only what the latest export used."""

import datetime as dt
from dataclasses import replace
from decimal import Decimal

import pytest

from publish import form_cache
from publish.form_cache import FormCache, form_key
from publish.forms import Institution, build_forms, form_kinds

AS_OF = dt.date(2026, 11, 25)


def plan(no: int, candidates: int) -> dict:
    return {
        "plan_no": f"P{no:04d}",
        "occupation_name": "电工",
        "work_type": None,
        "level_zh": "四级/中级工",
        "candidates": candidates,
        "passed": candidates - 1,
        "certificates_online": True,
        "assessment_year": 2025,
        "assessment_date": dt.date(2025, 1, no),
        "is_counting": True,
        "certificates_all_queryable": True,
        "pass_rate": Decimal("0.9"),
    }


def institution(n: int, can_apply_now: bool = True) -> Institution:
    return Institution(
        institution_id=f"I{n:03d}",
        name=f"第{n}职业技能培训学校",
        institution_type="school",
        institution_type_zh="院校",
        registration_no=f"Z35{n:04d}",
        address="福州市鼓楼区",
        registered_on=dt.date(2023, 3, 1),
        expires_on=dt.date(2026, 12, 31),
        responsible_person="王某",
        responsible_phone="0591-1234567",
        contact_person="李某",
        contact_phone="13800000000",
        email="a@example.cn",
        centre_name="福州市职业技能鉴定指导中心",
        batch_count=3,
        plans=[plan(i, 20 + n) for i in range(1, 4)],
        by_occupation_level=[
            {
                "occupation_name": "电工",
                "work_type": None,
                "level_zh": "四级/中级工",
                "batches": 3,
                "candidates": 60,
                "passed": 57,
            }
        ],
        facts={"occupations_added": 0, "rectification_notices": 0},
        eligibility={
            "can_apply_now": can_apply_now,
            "expected_certificates": 57,
            "issued_certificates": 57,
            "queryable_certificates": 57,
            "certificates_all_queryable": True,
            "meets_batch_threshold": True,
            "conditions_zh": "条件不符",
            "renewal_verdict_zh": "不予受理",
            "lifecycle_stage_zh": "续期申请期",
            "reasons_zh": "整改未完成",
            "as_of": AS_OF,
        },
    )


@pytest.fixture
def institutions() -> list[Institution]:
    return [institution(1), institution(2), institution(3, can_apply_now=False), institution(4)]


def entries(folder):
    return sorted(p for p in folder.glob("*/*") if p.is_file())


def test_an_empty_and_a_full_cache_give_the_builders_bytes(tmp_path, institutions):
    expected = build_forms(institutions, AS_OF, workers=1)
    first = FormCache(tmp_path)
    assert first.forms(institutions, AS_OF) == expected
    assert (first.built, first.from_cache, first.rejected) == (7, 0, 0)  # 3 packs of two, one 告知
    assert len(entries(tmp_path)) == 7

    second = FormCache(tmp_path)
    assert second.forms(institutions, AS_OF) == expected
    assert (second.built, second.from_cache, second.rejected) == (0, 7, 0)


def test_a_changed_input_remakes_exactly_that_institutions_forms(tmp_path, institutions):
    before = FormCache(tmp_path).forms(institutions, AS_OF)
    changed = list(institutions)
    changed[1] = replace(changed[1], plans=[plan(1, 99), *changed[1].plans[1:]])
    cache = FormCache(tmp_path)
    after = cache.forms(changed, AS_OF)
    assert after == build_forms(changed, AS_OF, workers=1)
    assert (cache.built, cache.from_cache) == (2, 5)
    assert [a != b for a, b in zip(after, before, strict=True)] == [False, True, False, False]
    # the pack's 附件1 lists the plan's candidates and 附件2 sums them: both files change
    assert all(x != y for x, y in zip(after[1], before[1], strict=True))

    # another D is another key for every form (D is in the forms' dates and properties)
    later = FormCache(tmp_path)
    later.forms(changed, AS_OF + dt.timedelta(days=1))
    assert (later.built, later.from_cache) == (7, 0)


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw: raw[: len(raw) // 2],  # truncated
        lambda raw: raw[:-10] + bytes([raw[-10] ^ 1]) + raw[-9:],  # one bit flipped in the bytes
        lambda raw: b"0" * 64 + raw[64:],  # the hash line itself
        lambda raw: b"",
    ],
    ids=["truncated", "bit-flip", "hash-line", "empty"],
)
def test_a_damaged_entry_is_made_again_not_exported(tmp_path, institutions, damage):
    expected = FormCache(tmp_path).forms(institutions, AS_OF)
    victim = entries(tmp_path)[3]
    victim.write_bytes(damage(victim.read_bytes()))
    cache = FormCache(tmp_path)
    assert cache.forms(institutions, AS_OF) == expected
    # the damaged entry's institution is made again, its forms all together; the others come from the cache
    owner = next(
        n
        for n, inst in enumerate(institutions)
        for kind in form_kinds(inst)
        if form_key(inst, AS_OF, kind) == victim.stem
    )
    assert (cache.rejected, cache.built, cache.from_cache) == (
        1,
        len(expected[owner]),
        7 - len(expected[owner]),
    )
    # the entry was written again, whole
    assert FormCache(tmp_path).forms(institutions, AS_OF) == expected
    assert not any(p.name.endswith(".tmp") for p in tmp_path.rglob("*"))


def test_the_cache_keeps_only_what_the_latest_export_used(tmp_path, institutions):
    FormCache(tmp_path).forms(institutions, AS_OF)
    (tmp_path / "ab").mkdir(exist_ok=True)
    (tmp_path / "ab" / ".left-over.tmp").write_bytes(b"half")  # a crash between write and rename
    cache = FormCache(tmp_path)
    cache.forms(institutions[:2], AS_OF)
    assert cache.keep_only_used() == 3 + 1
    assert len(entries(tmp_path)) == 4
    again = FormCache(tmp_path)
    again.forms(institutions[:2], AS_OF)
    assert (again.built, again.from_cache) == (0, 4)


def test_the_key_covers_the_record_the_kind_the_date_and_the_code(monkeypatch, institutions):
    inst = institutions[0]
    key = form_key(inst, AS_OF, "annex1")
    assert form_key(inst, AS_OF, "annex1") == key
    assert form_key(inst, AS_OF, "annex2") != key
    assert form_key(inst, AS_OF + dt.timedelta(days=1), "annex1") != key
    assert form_key(replace(inst, contact_phone="13900000000"), AS_OF, "annex1") != key
    moved = replace(inst, eligibility=inst.eligibility | {"as_of": AS_OF.isoformat()})
    assert form_key(moved, AS_OF, "annex1") != key  # a date and the same date as text differ
    monkeypatch.setattr(form_cache, "code_version", lambda: "another version of publish/forms.py")
    assert form_key(inst, AS_OF, "annex1") != key


def test_a_change_of_the_form_code_is_a_new_version(tmp_path, monkeypatch):
    code = tmp_path / "forms.py"
    code.write_text("A = 1\n")
    monkeypatch.setattr(form_cache, "FORM_CODE", [code])
    form_cache.code_version.cache_clear()
    try:
        before = form_cache.code_version()
        code.write_text("A = 2\n")
        form_cache.code_version.cache_clear()
        assert form_cache.code_version() != before
    finally:
        form_cache.code_version.cache_clear()
