-- One row per institution in the feed: key dates, lifecycle stage, batches, certificates and the renewal
-- verdict with every reason that applies on D (docs/rules.md R-DATES … R-VERDICT).
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
    select
        code_type,
        code,
        label_zh
    from {{ ref('code_labels') }}
),

centres as (
    select * from {{ ref('supervising_centres') }}
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
),

next_step_codes as (
    -- What the centre does next, derived from the stage, the verdict and the reasons: a closed or
    -- pending stage speaks for itself; otherwise each ground of the verdict in order of weight, then the
    -- stage's ordinary step unless the application would not be accepted.
    select
        conditions.institution_id,
        conditions.lifecycle_stage as step_code,
        0 as step_rank
    from conditions
    where conditions.lifecycle_stage in ('terminated', 'renewed', 'rejected', 'abandoned', 'under_review')
    union all
    select
        verdicts.institution_id,
        ranked.step_code,
        ranked.step_rank
    from verdicts
    inner join conditions on verdicts.institution_id = conditions.institution_id
    cross join (
        values
        ('rectification_unresolved', 1), ('article14_case', 2), ('no_incentive_evidence', 3),
        ('occupation_change_in_freeze', 4), ('certificate_data_incomplete', 5),
        ('below_batch_threshold', 6), ('force_majeure_statement_filed', 7), ('incentive_evidence_pending', 8)
    ) as ranked (step_code, step_rank)
    where
        conditions.lifecycle_stage not in ('terminated', 'renewed', 'rejected', 'abandoned', 'under_review')
        and list_contains(verdicts.reason_codes, ranked.step_code)
        -- a written explanation already filed is not asked for again
        and not (
            ranked.step_code = 'below_batch_threshold'
            and list_contains(verdicts.reason_codes, 'force_majeure_statement_filed')
        )
        -- an Article 14 case ends the registration: nothing else can make the application acceptable
        and not (ranked.step_code <> 'article14_case' and list_contains(verdicts.reason_codes, 'article14_case'))
    union all
    select
        verdicts.institution_id,
        conditions.lifecycle_stage,
        99
    from verdicts
    inner join conditions on verdicts.institution_id = conditions.institution_id
    where
        conditions.lifecycle_stage in ('window_open', 'overdue', 'grace_period', 'not_yet_due')
        and verdicts.renewal_verdict <> 'not_accepted'
),

next_steps as (
    select
        next_step_codes.institution_id,
        string_agg(centre_labels.label_zh, '；' order by next_step_codes.step_rank) as next_step_centre_zh,
        string_agg(institution_labels.label_zh, '' order by next_step_codes.step_rank) as message_institution_zh
    from next_step_codes
    left join labels as centre_labels
        on centre_labels.code_type = 'next_step_centre' and next_step_codes.step_code = centre_labels.code
    left join labels as institution_labels
        on
            institution_labels.code_type = 'next_step_institution'
            and next_step_codes.step_code = institution_labels.code
    group by next_step_codes.institution_id
),

reason_labels as (
    -- the reasons in Chinese, in the order of their codes
    select
        verdicts.institution_id,
        coalesce(string_agg(labels.label_zh, '；' order by labels.code), '') as reasons_zh
    from verdicts
    left join labels on labels.code_type = 'reason' and list_contains(verdicts.reason_codes, labels.code)
    group by verdicts.institution_id
)

select
    -- keys
    institutions.institution_id,
    institutions.institution_name,
    institutions.institution_type,
    type_labels.label_zh as institution_type_zh,
    institutions.registration_no,
    institutions.supervising_centre,
    centres.supervising_centre_zh,
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
    reason_labels.reasons_zh,
    conditions.application_missing_occupation_codes,
    -- shown to people: a closed stage is never shown as if the institution could still apply
    coalesce(stage_conditions.label_zh, verdict_labels.label_zh) as conditions_zh,
    conditions.lifecycle_stage not in ('abandoned', 'terminated', 'renewed', 'rejected')
    and verdicts.renewal_verdict <> 'not_accepted' as can_apply_now,
    next_steps.next_step_centre_zh,
    next_steps.message_institution_zh,
    {{ as_of() }} as as_of
from institutions
inner join conditions on institutions.institution_id = conditions.institution_id
inner join verdicts on institutions.institution_id = verdicts.institution_id
inner join reason_labels on institutions.institution_id = reason_labels.institution_id
left join labels as type_labels
    on type_labels.code_type = 'institution_type' and institutions.institution_type = type_labels.code
left join centres on institutions.supervising_centre = centres.supervising_centre
left join labels as stage_labels
    on stage_labels.code_type = 'lifecycle_stage' and conditions.lifecycle_stage = stage_labels.code
left join labels as verdict_labels
    on verdict_labels.code_type = 'renewal_verdict' and verdicts.renewal_verdict = verdict_labels.code
left join labels as stage_conditions
    on stage_conditions.code_type = 'stage_conditions' and conditions.lifecycle_stage = stage_conditions.code
left join next_steps on institutions.institution_id = next_steps.institution_id
