-- One row per institution in the feed: key dates, lifecycle stage, batches, certificates and the renewal
-- verdict with every reason that applies on D (RULES.md R-DATES … R-VERDICT).
with institutions as (
    select * from {{ ref('int_institutions_dated') }}
),

conditions as (
    select * from {{ ref('int_institution_conditions_as_of') }}
),

reasons as (
    select
        institution_id,
        list(reason_code order by reason_code) as reason_codes
    from {{ ref('int_institution_reasons') }}
    group by institution_id
),

labels as (
    select code_type, code, label_zh from {{ ref('code_labels') }}
),

verdicts as (
    select
        conditions.institution_id,
        coalesce(reasons.reason_codes, []) as reason_codes,
        case
            when list_has_any(
                coalesce(reasons.reason_codes, []),
                ['rectification_unresolved', 'no_incentive_evidence', 'article14_case']
            ) then 'not_accepted'
            when not conditions.certificates_all_queryable then 'incomplete_certificate_data'
            when not conditions.meets_batch_threshold and not coalesce(conditions.force_majeure_statement, false)
                then 'needs_written_explanation'
            when not conditions.meets_batch_threshold and conditions.force_majeure_statement then 'manual_review'
            when institutions.institution_type = 'employer' and conditions.counting_application_id is null
                then 'awaiting_incentive_evidence'
            else 'eligible'
        end as renewal_verdict
    from conditions
    inner join institutions on conditions.institution_id = institutions.institution_id
    left join reasons on conditions.institution_id = reasons.institution_id
)

select
    -- keys
    institutions.institution_id,
    institutions.institution_name,
    institutions.institution_type,
    type_labels.label_zh as institution_type_zh,
    institutions.registration_no,
    institutions.supervising_centre,
    centre_labels.label_zh as supervising_centre_zh,
    institutions.region_code,
    institutions.cohort,
    institutions.status as feed_status,
    -- dates
    institutions.registered_on,
    institutions.expires_on,
    institutions.window_opens_on,
    institutions.apply_by,
    institutions.grace_ends_on,
    conditions.counting_application_id,
    conditions.application_received_on,
    conditions.review_result,
    conditions.review_completed_on,
    -- stage
    conditions.lifecycle_stage,
    stage_labels.label_zh as lifecycle_stage_zh,
    -- measures
    conditions.batch_count,
    conditions.meets_batch_threshold,
    conditions.expected_certificates,
    conditions.issued_certificates,
    conditions.queryable_certificates,
    conditions.certificates_all_queryable,
    -- verdict
    verdicts.renewal_verdict,
    verdict_labels.label_zh as renewal_verdict_zh,
    array_to_string(verdicts.reason_codes, ';') as reasons,
    (
        select coalesce(string_agg(labels.label_zh, '；' order by labels.code), '')
        from labels
        where labels.code_type = 'reason' and list_contains(verdicts.reason_codes, labels.code)
    ) as reasons_zh,
    conditions.application_missing_occupation_codes,
    {{ as_of() }} as as_of
from institutions
inner join conditions on institutions.institution_id = conditions.institution_id
inner join verdicts on institutions.institution_id = verdicts.institution_id
left join labels as type_labels
    on type_labels.code_type = 'institution_type' and type_labels.code = institutions.institution_type
left join labels as centre_labels
    on centre_labels.code_type = 'supervising_centre' and centre_labels.code = institutions.supervising_centre
left join labels as stage_labels
    on stage_labels.code_type = 'lifecycle_stage' and stage_labels.code = conditions.lifecycle_stage
left join labels as verdict_labels
    on verdict_labels.code_type = 'renewal_verdict' and verdict_labels.code = verdicts.renewal_verdict
