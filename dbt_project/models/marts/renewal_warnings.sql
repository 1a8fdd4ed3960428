-- R-WARN: institutions at risk on D, one row each: not yet in the renewal window, the window opens within
-- warning_lead_days, and the verdict judged on D would not let them renew. Says why (the verdict's grounds
-- among the R-WARN reason codes) and what would fix it (how many more batches, which plans' certificates
-- cannot be found, which rectifications are open), so that the centre can warn them while they can still act.
with eligibility as (
    select * from {{ ref('renewal_eligibility') }}
),

institutions as (
    select * from {{ ref('int_institutions_dated') }}
),

policy as (
    select * from {{ ref('int_policy_parameters') }}
),

labels as (
    select
        code_type,
        code,
        label_zh
    from {{ ref('code_labels') }}
),

-- the R-WARN reason codes: those the seed code_labels says how to fix (code_type warning_fix)
warning_reasons as (
    select list(code order by code) as codes
    from labels
    where code_type = 'warning_fix'
),

at_risk as (
    select
        eligibility.*,
        policy.min_batches,
        greatest(0, policy.min_batches - eligibility.batch_count) as batches_needed,
        list_filter(
            string_split(eligibility.reasons, ';'),
            lambda code: list_contains(warning_reasons.codes, code)  -- noqa: RF02
        ) as warning_codes
    from eligibility
    cross join policy
    cross join warning_reasons
    where
        eligibility.lifecycle_stage = 'not_yet_due'
        and {{ as_of() }} >= eligibility.window_opens_on - to_days(policy.warning_lead_days)
        and eligibility.renewal_verdict in (
            'not_accepted', 'incomplete_certificate_data', 'needs_written_explanation', 'manual_review'
        )
),

unqueryable_plans as (
    -- the counting plans whose certificates are not all issued and found (R-CERT)
    select
        plans.institution_id,
        string_agg(
            plans.plan_no || '（合格' || plans.expected_certificates || '人，已发证' || plans.issued_certificates
            || '张，可查询' || plans.queryable_certificates || '张）',
            '；' order by plans.assessment_date, plans.plan_no
        ) as plans_with_unqueryable_certificates
    from {{ ref('int_plans_counted_in_period') }} as plans
    where plans.is_counting and not plans.certificates_all_queryable
    group by plans.institution_id
),

rectification_notices as (
    {{ rectification_notices_in_period(ref('stg_centre__rectification_notices'), 'institutions') }}
),

open_rectifications as (
    -- R-REJECT-1: notices of the period not completed by D (a completion after expires_on never clears one)
    select
        notices.institution_id,
        string_agg(
            notices.notice_id || coalesce('（整改期限' || strftime(notices.due_on, '%Y年%-m月%-d日') || '）', ''),
            '；' order by notices.issued_on, notices.notice_id
        ) as open_rectifications
    from rectification_notices as notices
    where notices.is_unresolved
    group by notices.institution_id
),

fixes as (
    select
        at_risk.institution_id,
        string_agg(
            labels.label_zh || case codes.warning_code
                when 'below_batch_threshold'
                    then
                        '：尚需' || at_risk.batches_needed || '批次（现有' || at_risk.batch_count || '批次，须'
                        || at_risk.min_batches || '批次）'
                when 'certificate_data_incomplete'
                    then
                        '：' || (at_risk.expected_certificates - at_risk.issued_certificates) || '张未发证，'
                        || (at_risk.issued_certificates - at_risk.queryable_certificates) || '张查询不到'
                else ''
            end,
            '；' order by codes.warning_code
        ) as fix_zh,
        string_agg(reason_labels.label_zh, '；' order by codes.warning_code) as warning_reasons_zh
    from at_risk
    cross join unnest(at_risk.warning_codes) as codes (warning_code)
    left join labels on labels.code_type = 'warning_fix' and codes.warning_code = labels.code
    left join labels as reason_labels on reason_labels.code_type = 'reason' and codes.warning_code = reason_labels.code
    group by at_risk.institution_id
)

select
    -- keys
    at_risk.institution_id,
    at_risk.supervising_centre,
    at_risk.supervising_centre_zh,
    at_risk.institution_name,
    at_risk.institution_type,
    at_risk.institution_type_zh,
    at_risk.registration_no,
    -- dates
    at_risk.window_opens_on,
    datediff('day', {{ as_of() }}, at_risk.window_opens_on) as days_until_window,
    at_risk.apply_by,
    at_risk.expires_on,
    -- why
    at_risk.renewal_verdict,
    at_risk.renewal_verdict_zh,
    array_to_string(at_risk.warning_codes, ';') as warning_reasons,
    coalesce(fixes.warning_reasons_zh, '') as warning_reasons_zh,
    -- measures
    at_risk.batch_count,
    at_risk.min_batches,
    at_risk.batches_needed,
    at_risk.expected_certificates,
    at_risk.issued_certificates,
    at_risk.queryable_certificates,
    at_risk.expected_certificates - at_risk.queryable_certificates as certificates_not_queryable,
    coalesce(unqueryable_plans.plans_with_unqueryable_certificates, '') as plans_with_unqueryable_certificates,
    coalesce(open_rectifications.open_rectifications, '') as open_rectifications,
    -- what would fix it
    coalesce(fixes.fix_zh, '') as fix_zh,
    -- contacts
    institutions.contact_person,
    institutions.contact_phone,
    institutions.responsible_person,
    institutions.responsible_phone,
    {{ as_of() }} as as_of
from at_risk
inner join institutions on at_risk.institution_id = institutions.institution_id
left join fixes on at_risk.institution_id = fixes.institution_id
left join unqueryable_plans on at_risk.institution_id = unqueryable_plans.institution_id
left join open_rectifications on at_risk.institution_id = open_rectifications.institution_id
