-- R-WORK: the counting applications (R-APP, R-SLA) with no review result known on D, the earliest review
-- deadline of each institution. The one list both review items read: review_overdue and review_due_soon.
select
    institution_id,
    min(review_due_on) as review_due_on
from {{ ref('review_sla') }}
where review_result is null
group by institution_id
