-- What the renewal application's work summary (附件2) must state besides the batches: occupations added during
-- the period (R-OCC), rectification notices received in it (R-REJECT-1) and occupation change requests in the
-- window (R-FREEZE), one row per institution.
with institutions as (
    select * from {{ ref('int_institutions_dated') }}
),

occupations_known as (
    {{ occupations_registered_by_as_of(ref('stg_feed__registered_occupations')) }}
),

added as (
    select
        occupations.institution_id,
        count(*) as occupations_added,
        string_agg(
            occupations.occupation_code || ' ' || coalesce(occupations.occupation_name, '')
            || coalesce('（' || nullif(occupations.work_type, '') || '）', ''),
            '；' order by occupations.occupation_code
        ) as occupations_added_list
    from occupations_known as occupations
    inner join institutions on occupations.institution_id = institutions.institution_id
    where
        occupations.registered_on > institutions.registered_on
        and occupations.registered_on <= institutions.expires_on
    group by occupations.institution_id
),

registered as (
    select
        institution_id,
        count(*) as occupations_registered
    from occupations_known
    group by institution_id
),

rectification_notices as (
    {{ rectification_notices_in_period(ref('stg_centre__rectification_notices'), 'institutions') }}
),

rectifications as (
    select
        notices.institution_id,
        count(*) as rectification_notices,
        count(*) filter (where notices.completed_on <= {{ as_of() }}) as rectifications_completed,
        string_agg(
            notices.notice_id || '（' || strftime(notices.issued_on, '%Y-%m-%d') || '下达，'
            || coalesce('整改期限' || strftime(notices.due_on, '%Y-%m-%d') || '，', '')
            || coalesce(strftime(
                case when notices.completed_on <= {{ as_of() }} then notices.completed_on end,
                '%Y-%m-%d'
            ) || '完成整改', '未完成整改') || '）',
            '；' order by notices.issued_on, notices.notice_id
        ) as rectification_list
    from rectification_notices as notices
    group by notices.institution_id
),

freeze_window_requests as (
    {{ occupation_changes_in_freeze(ref('stg_centre__occupation_change_requests'), 'institutions') }}
),

freeze_requests as (
    -- occupation change requests received in the window (暂停受理)
    select
        requests.institution_id,
        count(*) as freeze_requests,
        string_agg(
            requests.request_id || '（' || strftime(requests.received_on, '%Y-%m-%d') || '收到，'
            || case requests.change_type when 'add' then '新增' else '变更' end
            || coalesce(requests.occupation_code, '') || '）',
            '；' order by requests.received_on, requests.request_id
        ) as freeze_requests_list
    from freeze_window_requests as requests
    group by requests.institution_id
)

select
    institutions.institution_id,
    coalesce(registered.occupations_registered, 0) as occupations_registered,
    coalesce(added.occupations_added, 0) as occupations_added,
    coalesce(added.occupations_added_list, '') as occupations_added_list,
    coalesce(rectifications.rectification_notices, 0) as rectification_notices,
    coalesce(rectifications.rectifications_completed, 0) as rectifications_completed,
    coalesce(rectifications.rectification_list, '') as rectification_list,
    coalesce(freeze_requests.freeze_requests, 0) as freeze_requests,
    coalesce(freeze_requests.freeze_requests_list, '') as freeze_requests_list,
    {{ as_of() }} as as_of
from institutions
left join registered on institutions.institution_id = registered.institution_id
left join added on institutions.institution_id = added.institution_id
left join rectifications on institutions.institution_id = rectifications.institution_id
left join freeze_requests on institutions.institution_id = freeze_requests.institution_id
