-- R-DATES: key dates of each institution's registration period, with the cohort override as data.
with institutions as (
    select * from {{ ref('stg_feed__institutions') }}
),

policy as (
    select * from {{ ref('int_policy_parameters') }}
),

cohort_overrides as (
    select
        cohort,
        cast(window_opens_on as date) as window_opens_on,
        cast(apply_by as date) as apply_by
    from {{ ref('renewal_cohort_overrides') }}
)

select
    institutions.*,
    cast(coalesce(
        cohort_overrides.window_opens_on,
        institutions.expires_on - to_days(policy.window_days)
    ) as date) as window_opens_on,
    -- the override never moves the deadline past the end of the period
    cast(least(coalesce(cohort_overrides.apply_by, institutions.expires_on), institutions.expires_on) as date)
        as apply_by,
    cast((institutions.expires_on + to_days(policy.grace_days)) as date) as grace_ends_on,
    cohort_overrides.cohort is not null as has_cohort_override
from institutions
cross join policy
left join cohort_overrides on institutions.cohort = cohort_overrides.cohort
