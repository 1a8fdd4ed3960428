-- R-REMIND: one row per institution and reminder type whose condition holds on D, with first_due_on, the
-- first day of the unbroken run of days up to D on which it held (each day judged with its own records, span by
-- span: int_institution_stages_by_day).
with stages as (
    select * from {{ ref('int_institution_stages_by_day') }}
),

institutions as (
    select * from {{ ref('int_institutions_dated') }}
),

policy as (
    select * from {{ ref('int_policy_parameters') }}
),

days as (
    select
        stages.institution_id,
        stages.judged_on,
        stages.judged_until,
        stages.lifecycle_stage,
        institutions.* exclude (institution_id),  -- noqa: RF02
        policy.*
    from stages
    inner join institutions on stages.institution_id = institutions.institution_id
    cross join policy
),

spans as (
    -- each span of a stage, cut to the days on which its reminder holds (greatest() and least() would skip a
    -- NULL bound, but none can be: the dates and policy parameters are tested not_null before this model builds)
    select
        institution_id,
        greatest(judged_on, window_opens_on - window_opens_soon_days) as judged_on,
        least(judged_until, window_opens_on - 1) as judged_until,
        'window_opens_soon' as reminder_type
    from days
    where lifecycle_stage = 'not_yet_due'
    union all
    select
        institution_id,
        judged_on,
        judged_until,
        'window_open'
    from days
    where lifecycle_stage = 'window_open'
    union all
    select
        institution_id,
        judged_on,
        judged_until,
        'overdue'
    from days
    where lifecycle_stage = 'overdue'
    union all
    select
        institution_id,
        greatest(judged_on, expires_on - expiring_days),
        judged_until,
        'expiring_30d'
    from days
    where lifecycle_stage in ('window_open', 'overdue')
    union all
    select
        institution_id,
        judged_on,
        judged_until,
        'grace_period'
    from days
    where lifecycle_stage = 'grace_period'
    union all
    select
        institution_id,
        greatest(judged_on, grace_ends_on - grace_ending_days),
        judged_until,
        'grace_ending'
    from days
    where lifecycle_stage = 'grace_period'
    union all
    select
        institution_id,
        judged_on,
        least(judged_until, grace_ends_on + abandoned_notice_days),
        'abandoned'
    from days
    where lifecycle_stage = 'abandoned'
),

holding as (
    select *
    from spans
    where judged_on <= judged_until
),

current_runs as (
    {{ current_run_start('holding', ['institution_id', 'reminder_type'], as_column='first_due_on') }}
),

eligibility as (
    select * from {{ ref('renewal_eligibility') }}
),

types as (
    select * from {{ ref('reminder_types') }}
),

audiences as (
    select
        code,
        label_zh
    from {{ ref('code_labels') }}
    where code_type = 'audience'
),

deadlines as (
    -- each reminder's key date, the one its type's deadline_kind names (none for abandoned)
    select
        current_runs.institution_id,
        current_runs.reminder_type,
        case types.deadline_kind
            when 'window_opens_on' then institutions.window_opens_on
            when 'apply_by' then institutions.apply_by
            when 'grace_ends_on' then institutions.grace_ends_on
        end as deadline
    from current_runs
    inner join institutions on current_runs.institution_id = institutions.institution_id
    inner join types on current_runs.reminder_type = types.reminder_type
)

select
    -- keys
    current_runs.institution_id,
    current_runs.reminder_type,
    types.label_zh as reminder_type_zh,
    types.sort_order as reminder_type_sort_order,
    types.audience,
    audiences.label_zh as audience_zh,
    eligibility.supervising_centre,
    eligibility.supervising_centre_zh,
    -- dates
    current_runs.first_due_on,
    deadlines.deadline,
    datediff('day', {{ as_of() }}, deadlines.deadline) as days_left,
    -- what the deadline is: for window_opens_soon the day the window opens, not a 截止日期
    types.deadline_kind,
    types.deadline_label_zh,
    institutions.registered_on,
    institutions.expires_on,
    institutions.window_opens_on,
    institutions.apply_by,
    institutions.grace_ends_on,
    -- institution and contacts
    eligibility.institution_name,
    eligibility.institution_type,
    eligibility.institution_type_zh,
    eligibility.registration_no,
    institutions.contact_person,
    institutions.contact_phone,
    institutions.responsible_person,
    institutions.responsible_phone,
    institutions.email,
    institutions.address,
    -- where it stands
    eligibility.lifecycle_stage,
    eligibility.lifecycle_stage_zh,
    eligibility.renewal_verdict,
    eligibility.renewal_verdict_zh,
    eligibility.reasons,
    eligibility.reasons_zh,
    types.next_step_zh,
    -- how the conditions stood, never 符合续期条件 for a closed stage; the next step follows from the
    -- verdict and the flags (addressed to the centre) and a message the centre can forward to the institution
    eligibility.conditions_zh,
    eligibility.can_apply_now,
    eligibility.next_step_centre_zh,
    eligibility.message_institution_zh,
    eligibility.batch_count,
    eligibility.expected_certificates,
    eligibility.queryable_certificates,
    {{ as_of() }} as as_of
from current_runs
inner join institutions on current_runs.institution_id = institutions.institution_id
inner join eligibility on current_runs.institution_id = eligibility.institution_id
inner join types on current_runs.reminder_type = types.reminder_type
left join audiences on types.audience = audiences.code
inner join deadlines
    on
        current_runs.institution_id = deadlines.institution_id
        and current_runs.reminder_type = deadlines.reminder_type
