-- R-WORK flag_article14, flag_freeze, flag_post_expiry, flag_obligations: a reason on D that the centre must look
-- into, one item per reason (no deadline). Other reasons are for the verdict alone. One row per institution and
-- item.
with flag_items as (
    -- the reason each flag item stands for
    select
        flags.reason_code,
        flags.item_code
    from (
        values
        ('article14_case', 'flag_article14'),
        ('occupation_change_in_freeze', 'flag_freeze'),
        ('post_expiry_data', 'flag_post_expiry'),
        ('outstanding_obligations', 'flag_obligations')
    ) as flags (reason_code, item_code)
)

select
    reasons.institution_id,
    flag_items.item_code,
    null::date as item_deadline,
    null::varchar as detail_zh
from {{ ref('int_institution_reasons') }} as reasons
inner join flag_items on reasons.reason_code = flag_items.reason_code
