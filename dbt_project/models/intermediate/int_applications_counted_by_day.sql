-- R-APP, judged on the first day of each span of int_institution_days with only the records dated on or before
-- that day (the same for every day of the span): which application of the current period
-- (int_applications_in_period) counts (the latest counting one wins, ties by the highest application_id), what its
-- review result was known to be, and whether early/late ones exist.
with days as (
    select * from {{ ref('int_institution_days') }}
),

applications as (
    select * from {{ ref('int_applications_in_period') }}
),

known as (
    select
        days.institution_id,
        days.judged_on,
        applications.application_id,
        applications.received_on,
        applications.incentive_evidence,
        applications.force_majeure_statement,
        applications.occupation_codes,
        {{ review_known_on('days.judged_on') }},
        applications.timing
    from days
    inner join applications
        on
            days.institution_id = applications.institution_id
            and days.judged_on >= applications.received_on
),

summary as (
    select
        institution_id,
        judged_on,
        bool_or(timing = 'early') as has_early_application,
        bool_or(timing = 'late') as has_late_application
    from known
    group by institution_id, judged_on
),

counting as (
    select *
    from known
    where timing = 'counting'
    qualify row_number() over (
        partition by institution_id, judged_on order by received_on desc, application_id desc
    ) = 1
)

select
    days.institution_id,
    days.judged_on,
    days.judged_until,
    counting.application_id,
    counting.received_on,
    counting.incentive_evidence,
    counting.force_majeure_statement,
    counting.occupation_codes,
    counting.review_result,
    counting.review_completed_on,
    coalesce(summary.has_early_application, false) as has_early_application,
    coalesce(summary.has_late_application, false) as has_late_application
from days
left join counting
    on days.institution_id = counting.institution_id and days.judged_on = counting.judged_on
left join summary
    on days.institution_id = summary.institution_id and days.judged_on = summary.judged_on
