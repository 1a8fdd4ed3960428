-- R-WORK review_due_soon (续期评估期限临近): a counting application with no review result due from D to the
-- review_due_soon_working_days-th working day after D, both included; the deadline is its review_due_on. One row
-- per institution.
with open_reviews as (
    select * from {{ ref('int_open_reviews') }}
),

policy as (
    select * from {{ ref('int_policy_parameters') }}
),

calendar as (
    select * from {{ ref('int_working_days') }}
),

-- the review_due_soon_working_days-th working day after D
soon_limit as (
    select min(later.calendar_day) as review_due_soon_until
    from calendar as d_day
    cross join policy
    inner join calendar as later
        on later.workday_seq = d_day.workday_seq + policy.review_due_soon_working_days and later.is_workday
    where d_day.calendar_day = {{ as_of() }}
)

select
    open_reviews.institution_id,
    'review_due_soon' as item_code,
    open_reviews.review_due_on as item_deadline,
    '应于' || strftime(open_reviews.review_due_on, '%Y年%-m月%-d日') || '前反馈，还有'
    || (due_day.workday_seq - d_day.workday_seq) || '个工作日' as detail_zh
from open_reviews
cross join soon_limit
inner join calendar as due_day on open_reviews.review_due_on = due_day.calendar_day
inner join calendar as d_day on d_day.calendar_day = {{ as_of() }}
where open_reviews.review_due_on between {{ as_of() }} and soon_limit.review_due_soon_until
