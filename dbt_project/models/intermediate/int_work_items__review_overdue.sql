-- R-WORK review_overdue (续期评估已超期): a counting application with no review result and D after its
-- review_due_on (R-SLA); the deadline is that review_due_on. One row per institution.
select
    open_reviews.institution_id,
    'review_overdue' as item_code,
    open_reviews.review_due_on as item_deadline,
    '应于' || strftime(open_reviews.review_due_on, '%Y年%-m月%-d日') || '前反馈，已超期'
    || datediff('day', open_reviews.review_due_on, {{ as_of() }}) || '天' as detail_zh
from {{ ref('int_open_reviews') }} as open_reviews
where {{ as_of() }} > open_reviews.review_due_on
