-- R-WORK at_risk (续期预警): the institution is on R-WARN's list on D; the deadline is the day its window opens.
-- One row per institution.
select
    institution_id,
    'at_risk' as item_code,
    window_opens_on as item_deadline,
    '续期申请期' || strftime(window_opens_on, '%Y年%-m月%-d日') || '开启；' || warning_reasons_zh as detail_zh
from {{ ref('renewal_warnings') }}
