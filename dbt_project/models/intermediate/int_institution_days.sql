-- The days on which each institution's stage can change, each the first day of a span that runs to the day
-- before the next one (judged_until; D ends the last span). Between two of them nothing R-STAGE and R-APP read
-- can change, so int_institution_stages_by_day judges each span once, on its first day, and reminders and flags
-- find the first day of their unbroken run (R-REMIND first_due_on) from a handful of spans per institution,
-- however long ago the window opened. The spans start at the earliest day a reminder or flag could hold
-- (window_opens_on − window_opens_soon_days, expires_on − expiring_days, apply_by + 1).
with institutions as (
    select * from {{ ref('int_institutions_dated') }}
),

policy as (
    select * from {{ ref('int_policy_parameters') }}
),

applications as (
    select * from {{ ref('int_applications_in_period') }}
),

terminations as (
    select * from {{ ref('stg_centre__terminations') }}
),

bounds as (
    select
        institutions.institution_id,
        least(
            institutions.window_opens_on - to_days(policy.window_opens_soon_days),
            institutions.expires_on - to_days(policy.expiring_days),
            institutions.apply_by + 1
        )::date as first_day
    from institutions
    cross join policy
),

change_days as (
    -- every day a condition of int_institution_stages_by_day's case, or of R-APP's "dated on or before the
    -- day", first holds; a new condition there needs its day here
    select
        institution_id,
        first_day as changes_on
    from bounds
    union all
    select
        institution_id,
        unnest([window_opens_on, apply_by + 1, expires_on + 1, grace_ends_on + 1])
    from institutions
    union all
    select
        institution_id,
        notified_on
    from terminations
    union all
    select
        institution_id,
        unnest([received_on, review_completed_on])
    from applications
),

judged as (
    select
        bounds.institution_id,
        change_days.changes_on as judged_on
    from change_days
    inner join bounds on change_days.institution_id = bounds.institution_id
    where change_days.changes_on between bounds.first_day and {{ as_of() }}
    union
    select
        institution_id,
        {{ as_of() }}
    from institutions
)

select
    institution_id,
    judged_on,
    coalesce(
        lead(judged_on) over (partition by institution_id order by judged_on) - 1,
        {{ as_of() }}
    ) as judged_until
from judged
