-- The days on which each institution's stage is judged: D itself, and every day from the earliest day a
-- reminder or flag could hold (window_opens_on − window_opens_soon_days) up to D, so that reminders and
-- flags can find the first day of their unbroken run (R-REMIND first_due_on).
with institutions as (
    select * from {{ ref('int_institutions_dated') }}
),

policy as (
    select * from {{ ref('int_policy_parameters') }}
),

bounds as (
    select
        institutions.institution_id,
        least(
            institutions.window_opens_on - to_days(policy.window_opens_soon_days),
            institutions.expires_on - to_days(policy.expiring_days),
            institutions.apply_by + 1
        )::date as first_day,
        {{ as_of() }} as last_day
    from institutions
    cross join policy
),

series as (
    select
        institution_id,
        unnest(generate_series(first_day, last_day, interval 1 day))::date as judged_on
    from bounds
    where first_day <= last_day
)

select
    institution_id,
    judged_on
from series
union
select
    institution_id,
    {{ as_of() }} as judged_on
from institutions
