-- R-STAGE: lifecycle stage of each institution on each span of judged days, judged on its first day (first match
-- wins); int_institution_days starts a span on every day a condition below can change.
with days as (
    select * from {{ ref('int_applications_counted_by_day') }}
),

institutions as (
    select * from {{ ref('int_institutions_dated') }}
),

terminations as (
    select
        institution_id,
        min(notified_on) as first_notified_on
    from {{ ref('stg_centre__terminations') }}
    group by institution_id
)

select
    days.*,
    case
        when
            institutions.status in ('voluntarily_terminated', 'terminated')
            or terminations.first_notified_on <= days.judged_on then 'terminated'
        when days.review_result = 'approved' then 'renewed'
        when days.review_result = 'rejected' then 'rejected'
        when days.application_id is not null then 'under_review'
        when days.judged_on > institutions.grace_ends_on then 'abandoned'
        when days.judged_on > institutions.expires_on then 'grace_period'
        when days.judged_on > institutions.apply_by then 'overdue'
        when days.judged_on >= institutions.window_opens_on then 'window_open'
        else 'not_yet_due'
    end as lifecycle_stage
from days
inner join institutions on days.institution_id = institutions.institution_id
left join terminations on days.institution_id = terminations.institution_id
