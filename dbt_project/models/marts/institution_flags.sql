-- One row per institution and flag that holds on D, with the date it first held (the start of its current
-- unbroken run for stage flags; the date of the earliest underlying record for the others).
with stages as (
    select * from {{ ref('int_institution_stages_by_day') }}
),

conditions as (
    select * from {{ ref('int_institution_conditions_as_of') }}
),

stage_days as (
    select
        institution_id,
        judged_on,
        judged_until,
        'expiring' as flag
    from stages
    where lifecycle_stage in ('window_open', 'overdue')
    union all
    select
        institution_id,
        judged_on,
        judged_until,
        'overdue'
    from stages
    where lifecycle_stage = 'overdue'
    union all
    select
        institution_id,
        judged_on,
        judged_until,
        'grace_period'
    from stages
    where lifecycle_stage = 'grace_period'
    union all
    select
        institution_id,
        judged_on,
        judged_until,
        'abandoned'
    from stages
    where lifecycle_stage = 'abandoned'
),

stage_flags as (
    {{ current_run_start('stage_days', ['institution_id', 'flag'], as_column='first_held_on') }}
),

record_flags as (
    select
        institution_id,
        'rectification_unresolved' as flag,
        rectification_unresolved_since as first_held_on
    from conditions
    where rectification_unresolved_since is not null
    union all
    select
        institution_id,
        'article14_case',
        article14_case_since
    from conditions
    where article14_case_since is not null
    union all
    select
        institution_id,
        'occupation_change_in_freeze',
        occupation_change_in_freeze_since
    from conditions
    where occupation_change_in_freeze_since is not null
    union all
    select
        institution_id,
        'post_expiry_data',
        post_expiry_data_since
    from conditions
    where post_expiry_data_since is not null
    union all
    select
        institution_id,
        'outstanding_obligations',
        outstanding_obligations_since
    from conditions
    where outstanding_obligations_since is not null
    union all
    select
        institution_id,
        'review_overdue',
        min(review_due_on + 1)
    from {{ ref('review_sla') }}
    where review_overdue
    group by institution_id
),

flags as (
    select * from stage_flags
    union all
    select * from record_flags
),

labels as (
    select
        code,
        label_zh
    from {{ ref('code_labels') }}
    where code_type = 'flag'
),

institutions as (
    select
        institution_id,
        institution_name,
        supervising_centre
    from {{ ref('int_institutions_dated') }}
),

centres as (
    select * from {{ ref('supervising_centres') }}
)

select
    flags.institution_id,
    flags.flag,
    labels.label_zh as flag_zh,
    institutions.institution_name,
    institutions.supervising_centre,
    centres.supervising_centre_zh,
    flags.first_held_on,
    {{ as_of() }} as as_of
from flags
inner join institutions on flags.institution_id = institutions.institution_id
left join labels on flags.flag = labels.code
left join centres on institutions.supervising_centre = centres.supervising_centre
