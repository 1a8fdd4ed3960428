-- R-WORK: what each supervising centre must act on, on D (the 今日须办 list).
-- Grain: one row per list (list_centre: the centre whose list it is) and institution, with the item codes of
-- R-WORK sorted and ';'-joined and the earliest deadline among them (docs/rules.md R-WORK). Not a row per item:
-- the rule asks for a row per institution, which is what an officer works through (one call per institution),
-- so the items are columns of the row: item_codes, item_codes_zh and actions_zh.
-- The provincial centre's list (350000, docs/contract.md §3) holds every centre's rows plus its own tasks.
with eligibility as (
    select * from {{ ref('renewal_eligibility') }}
),

institutions as (
    select * from {{ ref('int_institutions_dated') }}
),

policy as (
    select * from {{ ref('int_policy_parameters') }}
),

calendar as (
    select * from {{ ref('int_working_days') }}
),

labels as (
    select
        code_type,
        code,
        label_zh,
        sort_order
    from {{ ref('code_labels') }}
),

reminders as (
    select * from {{ ref('reminders') }}
),

centres as (
    select * from {{ ref('supervising_centres') }}
),

today as (
    select {{ as_of() }} as as_of
),

-- the review_due_soon_working_days-th working day after D (R-WORK review_due_soon)
soon_limit as (
    select min(later.calendar_day) as review_due_soon_until
    from calendar as d_day
    cross join policy
    inner join calendar as later
        on later.workday_seq = d_day.workday_seq + policy.review_due_soon_working_days and later.is_workday
    where d_day.calendar_day = {{ as_of() }}
),

open_reviews as (
    -- counting applications (R-APP, R-SLA) with no review result known on D
    select
        review_sla.institution_id,
        min(review_sla.review_due_on) as review_due_on
    from {{ ref('review_sla') }} as review_sla
    where review_sla.review_result is null
    group by review_sla.institution_id
),

centre_items as (
    select
        institution_id,
        'expires_today' as item_code,
        {{ as_of() }} as item_deadline,
        null::varchar as detail_zh
    from eligibility
    where expires_on = {{ as_of() }} and lifecycle_stage in ('window_open', 'overdue')
    union all
    select
        institution_id,
        'grace_ends_today',
        {{ as_of() }},
        null
    from eligibility
    where grace_ends_on = {{ as_of() }} and lifecycle_stage = 'grace_period'
    union all
    -- every reminder whose condition holds on D, new or continuing, whatever its audience
    select
        institution_id,
        'reminder',
        min(case
            when reminder_type in ('window_open', 'expiring_30d', 'overdue') then apply_by
            when reminder_type = 'window_opens_soon' then window_opens_on
            when reminder_type in ('grace_period', 'grace_ending') then grace_ends_on
        end),
        -- each reminder with its key date named for what it is (a window's opening day is no 截止日期)
        string_agg(
            reminder_type_zh || coalesce(
                '，' || deadline_label_zh || '为' || strftime(deadline, '%Y年%-m月%-d日'), ''
            ),
            '；' order by reminder_type
        )
    from reminders
    group by institution_id
    union all
    select
        open_reviews.institution_id,
        'review_overdue',
        open_reviews.review_due_on,
        '应于' || strftime(open_reviews.review_due_on, '%Y年%-m月%-d日') || '前反馈，已超期'
        || datediff('day', open_reviews.review_due_on, {{ as_of() }}) || '天'
    from open_reviews
    where {{ as_of() }} > open_reviews.review_due_on
    union all
    select
        open_reviews.institution_id,
        'review_due_soon',
        open_reviews.review_due_on,
        '应于' || strftime(open_reviews.review_due_on, '%Y年%-m月%-d日') || '前反馈，还有'
        || (due_day.workday_seq - d_day.workday_seq) || '个工作日'
    from open_reviews
    cross join soon_limit
    inner join calendar as due_day on open_reviews.review_due_on = due_day.calendar_day
    inner join calendar as d_day on d_day.calendar_day = {{ as_of() }}
    where open_reviews.review_due_on between {{ as_of() }} and soon_limit.review_due_soon_until
    union all
    select
        institution_id,
        case reason_code
            when 'article14_case' then 'flag_article14'
            when 'occupation_change_in_freeze' then 'flag_freeze'
            when 'post_expiry_data' then 'flag_post_expiry'
            when 'outstanding_obligations' then 'flag_obligations'
        end,
        null,
        null
    from {{ ref('int_institution_reasons') }}
    where
        reason_code in ('article14_case', 'occupation_change_in_freeze', 'post_expiry_data', 'outstanding_obligations')
    union all
    select
        institution_id,
        'at_risk',
        window_opens_on,
        '续期申请期' || strftime(window_opens_on, '%Y年%-m月%-d日') || '开启；' || warning_reasons_zh
    from {{ ref('renewal_warnings') }}
),

province_tasks as (
    select
        eligibility.institution_id,
        'issue_new_letter' as item_code,
        null::date as item_deadline,
        '续期评估于' || strftime(eligibility.review_completed_on, '%Y年%-m月%-d日') || '通过' as detail_zh
    from eligibility
    cross join policy
    where
        eligibility.lifecycle_stage = 'renewed'
        and eligibility.review_completed_on between {{ as_of() }} - to_days(policy.new_letter_task_days)
        and {{ as_of() }}
    union all
    -- a termination known only from the feed's status has no date and yields no task
    select
        terminations.institution_id,
        'report_termination',
        null,
        '终止备案通知日期' || strftime(max(terminations.notified_on), '%Y年%-m月%-d日')
    from {{ ref('stg_centre__terminations') }} as terminations
    cross join policy
    where
        terminations.notified_on between {{ as_of() }} - to_days(policy.termination_report_days)
        and {{ as_of() }}
    group by terminations.institution_id
),

listed as (
    -- each centre's own list
    select
        eligibility.supervising_centre as list_centre,
        centre_items.*
    from centre_items
    inner join eligibility on centre_items.institution_id = eligibility.institution_id
    union all
    -- the province's list: every other centre's rows too, and its own tasks
    select
        '350000',
        centre_items.*
    from centre_items
    inner join eligibility on centre_items.institution_id = eligibility.institution_id
    where eligibility.supervising_centre <> '350000'
    union all
    select
        '350000',
        province_tasks.*
    from province_tasks
),

item_order as (
    -- the order items are read out within a row: the most pressing first (code_labels.sort_order)
    select
        code as item_code,
        sort_order as item_rank
    from labels
    where code_type = 'work_item'
),

rows_ as (
    select
        listed.list_centre,
        listed.institution_id,
        string_agg(listed.item_code, ';' order by listed.item_code) as item_codes,
        string_agg(item_labels.label_zh, '；' order by item_order.item_rank) as item_codes_zh,
        string_agg(
            action_labels.label_zh || coalesce('（' || listed.detail_zh || '）', ''),
            '；' order by item_order.item_rank
        ) as actions_zh,
        min(listed.item_deadline) as deadline,
        case
            when bool_or(listed.item_code in ('expires_today', 'grace_ends_today')) then 1
            when bool_or(listed.item_code = 'review_overdue') then 2
            else 3
        end as urgency_group,
        bool_or(listed.item_code in ('issue_new_letter', 'report_termination')) as has_province_task
    from listed
    inner join item_order on listed.item_code = item_order.item_code
    left join labels as item_labels on item_labels.code_type = 'work_item' and listed.item_code = item_labels.code
    left join labels as action_labels
        on action_labels.code_type = 'work_action' and listed.item_code = action_labels.code
    group by listed.list_centre, listed.institution_id
),

reminder_types as (
    select
        institution_id,
        string_agg(reminder_type, ';' order by reminder_type) as reminder_types,
        string_agg(reminder_type, ';' order by reminder_type) filter (where first_due_on = {{ as_of() }})
            as new_reminder_types,
        string_agg(reminder_type_zh, '；' order by reminder_type) as reminder_types_zh,
        string_agg(reminder_type_zh, '；' order by reminder_type) filter (where first_due_on = {{ as_of() }})
            as new_reminder_types_zh
    from reminders
    group by institution_id
)

select
    -- keys
    rows_.list_centre,
    centres.supervising_centre_zh as list_centre_zh,
    rows_.institution_id,
    eligibility.supervising_centre,
    eligibility.supervising_centre_zh,
    eligibility.institution_name,
    eligibility.institution_type,
    eligibility.institution_type_zh,
    eligibility.registration_no,
    -- the items
    rows_.item_codes,
    rows_.item_codes_zh,
    rows_.actions_zh,
    rows_.urgency_group,
    case rows_.urgency_group when 1 then '今日到期' when 2 then '评估超期' else '待办' end as urgency_zh,
    row_number() over (
        partition by rows_.list_centre
        order by rows_.urgency_group, rows_.deadline nulls last, rows_.institution_id
    ) as sort_order,
    rows_.has_province_task,
    coalesce(reminder_types.reminder_types, '') as reminder_types,
    coalesce(reminder_types.new_reminder_types, '') as new_reminder_types,
    coalesce(reminder_types.reminder_types_zh, '') as reminder_types_zh,
    coalesce(reminder_types.new_reminder_types_zh, '') as new_reminder_types_zh,
    -- dates
    rows_.deadline,
    datediff('day', {{ as_of() }}, rows_.deadline) as days_left,
    eligibility.expires_on,
    eligibility.window_opens_on,
    eligibility.grace_ends_on,
    -- where it stands
    eligibility.lifecycle_stage,
    eligibility.lifecycle_stage_zh,
    eligibility.renewal_verdict,
    eligibility.renewal_verdict_zh,
    eligibility.conditions_zh,
    eligibility.batch_count,
    eligibility.expected_certificates,
    eligibility.queryable_certificates,
    eligibility.next_step_centre_zh,
    eligibility.message_institution_zh,
    -- contacts
    institutions.responsible_person,
    institutions.responsible_phone,
    institutions.contact_person,
    institutions.contact_phone,
    institutions.email,
    today.as_of
from rows_
cross join today
inner join eligibility on rows_.institution_id = eligibility.institution_id
inner join institutions on rows_.institution_id = institutions.institution_id
left join reminder_types on rows_.institution_id = reminder_types.institution_id
left join centres on rows_.list_centre = centres.supervising_centre
