-- R-WORK: what each supervising centre must act on, on D (the 今日须办 list).
-- Grain: one row per list (list_centre: the centre whose list it is) and institution, with the item codes of
-- R-WORK sorted and ';'-joined and the earliest deadline among them (docs/rules.md R-WORK). Not a row per item:
-- the rule asks for a row per institution, which is what an officer works through (one call per institution),
-- so the items are columns of the row: item_codes, item_codes_zh and actions_zh.
-- The provincial centre's list (350000, docs/contract.md §3; macros/province_centre.sql reads its code from the
-- seed supervising_centres) holds every centre's rows plus its own tasks.
-- Each kind of item of R-WORK's table comes from the model that decides it (models/intermediate/int_work_items__*),
-- each with institution_id, item_code, item_deadline and detail_zh; this model lists them and orders them.
{%- set centre_item_models = [
    'int_work_items__expires_today',
    'int_work_items__grace_ends_today',
    'int_work_items__reminder',
    'int_work_items__review_overdue',
    'int_work_items__review_due_soon',
    'int_work_items__flags',
    'int_work_items__at_risk',
] %}
{%- set province_task_models = [
    'int_work_items__issue_new_letter',
    'int_work_items__report_termination',
] %}

with eligibility as (
    select * from {{ ref('renewal_eligibility') }}
),

institutions as (
    select * from {{ ref('int_institutions_dated') }}
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

items as (
    -- every item of every kind, with whose list it goes on: its centre's (and so the province's), or only the
    -- province's (its own tasks)
    {%- for model in centre_item_models + province_task_models %}
        select
            institution_id,
            item_code,
            item_deadline,
            detail_zh,
            {{ model in province_task_models }} as province_task
        from {{ ref(model) }}
        {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

centre_items as (
    select * exclude (province_task) from items
    where not province_task
),

province_tasks as (
    select * exclude (province_task) from items
    where province_task
),

province as (
    -- the provincial centre, from the seed supervising_centres (macros/province_centre.sql)
    select {{ province_centre() }} as supervising_centre
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
        province.supervising_centre,
        centre_items.*
    from centre_items
    cross join province
    inner join eligibility on centre_items.institution_id = eligibility.institution_id
    where eligibility.supervising_centre <> province.supervising_centre
    union all
    select
        province.supervising_centre,
        province_tasks.*
    from province_tasks
    cross join province
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
