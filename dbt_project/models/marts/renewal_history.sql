-- full_refresh=false: `dbt build --full-refresh` (which rebuilds stg_feed__certificates) keeps every partition;
-- the earlier days cannot be rebuilt from the data (the feed keeps no history), only backfilled (make backfill).
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='as_of',
    full_refresh=false,
    on_schema_change='fail'
) }}
-- One partition per as-of date: how each institution stood on every day the pipeline ran, and whether its
-- stage or verdict changed since the previous run before that day. A rerun for D replaces D's partition,
-- so the mart stays a function of the data and the dates it was run for.
with today as (
    select
        as_of,
        institution_id,
        institution_name,
        supervising_centre,
        lifecycle_stage,
        lifecycle_stage_zh,
        renewal_verdict,
        renewal_verdict_zh,
        reasons,
        batch_count,
        certificates_all_queryable
    from {{ ref('renewal_eligibility') }}
),

previous as (
    {% if is_incremental() %}
        select
            institution_id,
            as_of as previous_as_of,
            lifecycle_stage as previous_stage,
            renewal_verdict as previous_verdict
        from {{ this }}
        where as_of < {{ as_of() }}
        qualify row_number() over (partition by institution_id order by as_of desc) = 1
    {% else %}
        select
            cast(null as varchar) as institution_id,
            cast(null as date) as previous_as_of,
            cast(null as varchar) as previous_stage,
            cast(null as varchar) as previous_verdict
        where false
    {% endif %}
)

select
    today.*,
    previous.previous_as_of,
    previous.previous_stage,
    previous.previous_verdict,
    (previous.previous_stage is distinct from today.lifecycle_stage) as stage_changed,
    (previous.previous_verdict is distinct from today.renewal_verdict) as verdict_changed
from today
left join previous on today.institution_id = previous.institution_id
