-- The province's roll-up: one row per supervising centre (every centre) and lifecycle stage (every stage, zero
-- included) with the number of institutions in it, and per centre the overdue reviews (R-SLA, no result yet),
-- the institutions at risk (R-WARN) and the rows of its own work list (R-WORK). Reminders sent today are the
-- export's to count (they depend on the send ledger, not on D alone).
with eligibility as (
    select * from {{ ref('renewal_eligibility') }}
),

centre_names as (
    select * from {{ ref('supervising_centres') }}
),

centres as (
    -- every centre, one with no institutions too (its rows are zeros, but for the province's own tasks), and
    -- any other centre the feed names
    select supervising_centre from centre_names
    union
    select supervising_centre from eligibility
),

stages as (
    select
        code as lifecycle_stage,
        label_zh as lifecycle_stage_zh,
        sort_order as lifecycle_stage_sort_order
    from {{ ref('code_labels') }}
    where code_type = 'lifecycle_stage'
),

stage_counts as (
    select
        supervising_centre,
        lifecycle_stage,
        count(*) as institutions
    from eligibility
    group by supervising_centre, lifecycle_stage
),

overdue_reviews as (
    select
        eligibility.supervising_centre,
        count(*) as overdue_reviews
    from {{ ref('review_sla') }} as review_sla
    inner join eligibility on review_sla.institution_id = eligibility.institution_id
    where review_sla.review_result is null and review_sla.review_overdue
    group by eligibility.supervising_centre
),

warnings as (
    select
        supervising_centre,
        count(*) as institutions_at_risk
    from {{ ref('renewal_warnings') }}
    group by supervising_centre
),

work as (
    select
        list_centre as supervising_centre,
        count(*) as work_items
    from {{ ref('work_items') }}
    group by list_centre
)

select
    centres.supervising_centre,
    centre_names.supervising_centre_zh,
    stages.lifecycle_stage,
    stages.lifecycle_stage_zh,
    stages.lifecycle_stage_sort_order,
    coalesce(stage_counts.institutions, 0) as institutions,
    coalesce(overdue_reviews.overdue_reviews, 0) as overdue_reviews,
    coalesce(warnings.institutions_at_risk, 0) as institutions_at_risk,
    coalesce(work.work_items, 0) as work_items,
    {{ as_of() }} as as_of
from centres
cross join stages
left join stage_counts
    on
        centres.supervising_centre = stage_counts.supervising_centre
        and stages.lifecycle_stage = stage_counts.lifecycle_stage
left join overdue_reviews on centres.supervising_centre = overdue_reviews.supervising_centre
left join warnings on centres.supervising_centre = warnings.supervising_centre
left join work on centres.supervising_centre = work.supervising_centre
left join centre_names on centres.supervising_centre = centre_names.supervising_centre
