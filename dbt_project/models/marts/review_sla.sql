-- R-SLA: one row per counting application (R-APP) known on D, with the 30th working day after receipt.
with applications as (
    select * from {{ ref('int_applications_in_period') }}
),

institutions as (
    select
        institution_id,
        institution_name,
        supervising_centre
    from {{ ref('int_institutions_dated') }}
),

policy as (
    select * from {{ ref('int_policy_parameters') }}
),

calendar as (
    select * from {{ ref('int_working_days') }}
),

centres as (
    select * from {{ ref('supervising_centres') }}
),

as_of_day as (
    select workday_seq from calendar
    where calendar_day = {{ as_of() }}
),

counting as (
    select
        applications.application_id,
        applications.institution_id,
        institutions.institution_name,
        institutions.supervising_centre,
        applications.received_on,
        {{ review_known_on(as_of()) }},
        received_day.workday_seq + policy.review_working_days as due_seq
    from applications
    left join institutions on applications.institution_id = institutions.institution_id
    cross join policy
    inner join calendar as received_day on applications.received_on = received_day.calendar_day
    -- R-APP: the counting applications (int_applications_in_period times them) received by D
    where
        applications.timing = 'counting'
        and applications.received_on <= {{ as_of() }}
),

due as (
    select
        counting.application_id,
        min(calendar.calendar_day) filter (where calendar.is_workday and calendar.workday_seq = counting.due_seq)
            as review_due_on
    from counting
    inner join calendar
        on
            counting.received_on < calendar.calendar_day
            and counting.due_seq >= calendar.workday_seq
    group by counting.application_id
),

estimated as (
    select
        counting.application_id,
        bool_or(calendar.is_estimate) as review_due_is_estimate
    from counting
    inner join due on counting.application_id = due.application_id
    inner join calendar on counting.received_on < calendar.calendar_day and due.review_due_on >= calendar.calendar_day
    group by counting.application_id
)

select
    counting.application_id,
    counting.institution_id,
    counting.received_on,
    due.review_due_on,
    estimated.review_due_is_estimate,
    counting.review_completed_on,
    counting.review_result,
    (counting.review_result is null and {{ as_of() }} > due.review_due_on)
    or coalesce(counting.review_completed_on > due.review_due_on, false) as review_overdue,
    case
        when counting.review_completed_on is not null
            then greatest(datediff('day', due.review_due_on, counting.review_completed_on), 0)
        else greatest(datediff('day', due.review_due_on, {{ as_of() }}), 0)
    end as days_overdue,
    -- open reviews only: working days from D to the deadline (0 = due today, negative = overdue), so the
    -- dashboards can show "due within 10 working days" on the PRC calendar
    case when counting.review_result is null then counting.due_seq - as_of_day.workday_seq end
        as working_days_left,
    counting.institution_name,
    counting.supervising_centre,
    centres.supervising_centre_zh,
    {{ as_of() }} as as_of
from counting
inner join due on counting.application_id = due.application_id
inner join estimated on counting.application_id = estimated.application_id
cross join as_of_day
left join centres on counting.supervising_centre = centres.supervising_centre
