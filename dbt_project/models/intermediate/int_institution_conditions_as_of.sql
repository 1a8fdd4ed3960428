-- Every fact the verdict and reasons need, per institution, judged on D with records dated on or before D.
with institutions as (
    select * from {{ ref('int_institutions_dated') }}
),

policy as (
    select * from {{ ref('int_policy_parameters') }}
),

stage as (
    -- R-STAGE and R-APP on D
    select * from {{ ref('int_institution_stages_by_day') }}
    where judged_on = {{ as_of() }}
),

plans as (
    select * from {{ ref('int_plans_counted_in_period') }}
),

batches as (
    -- R-BATCH and R-CERT over the counting plans
    select
        institution_id,
        count(distinct plan_no) as batch_count,
        sum(expected_certificates) as expected_certificates,
        sum(issued_certificates) as issued_certificates,
        sum(queryable_certificates) as queryable_certificates,
        bool_and(certificates_all_queryable) as every_plan_certificates_queryable
    from plans
    where is_counting
    group by institution_id
),

rectification_notices as (
    {{ rectification_notices_in_period(ref('stg_centre__rectification_notices'), 'institutions') }}
),

rectifications as (
    -- R-REJECT-1: issued in the period, not completed by D or completed only after expires_on
    select
        institution_id,
        min(issued_on) as first_on
    from rectification_notices
    where is_unresolved
    group by institution_id
),

article14_cases as (
    -- R-REJECT-3
    select
        institution_id,
        min(opened_on) as first_on
    from {{ ref('stg_centre__disciplinary_cases') }}
    where terminates_registration and opened_on <= {{ as_of() }}
    group by institution_id
),

freeze_window_requests as (
    {{ occupation_changes_in_freeze(ref('stg_centre__occupation_change_requests'), 'institutions') }}
),

freeze_changes as (
    select
        institution_id,
        min(received_on) as first_on
    from freeze_window_requests
    group by institution_id
),

post_expiry_records as (
    -- R-POST: data reported after expiry (the stage condition is applied below)
    select
        plans.institution_id,
        plans.assessment_date as reported_on
    from plans
    where
        plans.status = 'completed'
        and plans.assessment_date > plans.expires_on
        and plans.assessment_date <= {{ as_of() }}
    union all
    select
        certificates.institution_id,
        certificates.issued_on
    from {{ ref('int_certificates_with_latest_lookup') }} as certificates
    inner join institutions on certificates.institution_id = institutions.institution_id
    where certificates.issued_on > institutions.expires_on
),

post_expiry as (
    select
        institution_id,
        min(reported_on) as first_on
    from post_expiry_records
    group by institution_id
),

open_obligations as (
    -- R-OBLIG: a counting plan whose certificates are not all issued and queryable
    select
        institution_id,
        min(assessment_date) as first_on
    from plans
    where is_counting and not certificates_all_queryable
    group by institution_id
),

occupations_known as (
    {{ occupations_registered_by_as_of(ref('stg_feed__registered_occupations')) }}
),

missing_occupations as (
    -- R-OCC: the counting application lists codes and leaves out a registered occupation
    select
        stage.institution_id,
        string_agg(occupations_known.occupation_code, ';' order by occupations_known.occupation_code) as missing_codes
    from stage
    inner join occupations_known on stage.institution_id = occupations_known.institution_id
    where
        stage.occupation_codes is not null
        and stage.occupation_codes <> ''
        and not list_contains(string_split(stage.occupation_codes, ';'), occupations_known.occupation_code)
    group by stage.institution_id
)

select
    institutions.institution_id,
    stage.lifecycle_stage,
    stage.application_id as counting_application_id,
    stage.received_on as application_received_on,
    stage.incentive_evidence,
    stage.force_majeure_statement,
    stage.review_result,
    stage.review_completed_on,
    stage.has_early_application,
    stage.has_late_application,
    coalesce(batches.batch_count, 0) as batch_count,
    coalesce(batches.batch_count, 0) >= policy.min_batches as meets_batch_threshold,
    coalesce(batches.expected_certificates, 0) as expected_certificates,
    coalesce(batches.issued_certificates, 0) as issued_certificates,
    coalesce(batches.queryable_certificates, 0) as queryable_certificates,
    coalesce(batches.issued_certificates, 0) = coalesce(batches.expected_certificates, 0)
    and coalesce(batches.queryable_certificates, 0) = coalesce(batches.issued_certificates, 0)
        as certificates_all_queryable,
    rectifications.first_on as rectification_unresolved_since,
    article14_cases.first_on as article14_case_since,
    freeze_changes.first_on as occupation_change_in_freeze_since,
    -- (greatest() skips NULLs, so the record's existence is tested first)
    case
        when stage.lifecycle_stage in ('grace_period', 'abandoned', 'rejected') and post_expiry.first_on is not null
            then greatest(post_expiry.first_on, institutions.expires_on + 1)
    end as post_expiry_data_since,
    case
        when stage.lifecycle_stage in ('terminated', 'abandoned')
            then open_obligations.first_on
    end as outstanding_obligations_since,
    missing_occupations.missing_codes as application_missing_occupation_codes
from institutions
cross join policy
inner join stage on institutions.institution_id = stage.institution_id
left join batches on institutions.institution_id = batches.institution_id
left join rectifications on institutions.institution_id = rectifications.institution_id
left join article14_cases on institutions.institution_id = article14_cases.institution_id
left join freeze_changes on institutions.institution_id = freeze_changes.institution_id
left join post_expiry on institutions.institution_id = post_expiry.institution_id
left join open_obligations on institutions.institution_id = open_obligations.institution_id
left join missing_occupations on institutions.institution_id = missing_occupations.institution_id
