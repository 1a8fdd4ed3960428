-- The latest version of each certificate (by updated_at, then load_id). Millions of rows at province scale, so
-- it is incremental: a run reads only the loads landed since the newest load it already holds, and
-- re-decides the certificates those loads touch against the version kept. `dbt build --full-refresh` rebuilds
-- it from every load (needed after a change to its columns: on_schema_change='fail' stops the run until then).
-- depends_on: {{ source('feed', 'feed_loads') }}  (read only when incremental, below; this puts it in the DAG)
{{ config(materialized='incremental', unique_key='certificate_no', incremental_strategy='delete+insert',
          on_schema_change='fail') }}

with source as (
    select * from {{ source('feed', 'certificates') }}
    {% if is_incremental() %}
    -- Loads land one at a time, one transaction each (ingest/land.py), so every load up to the newest one
    -- held here was already there when this model last ran, and was read then. (A later load all of whose
    -- versions lost is read again next time: harmless, as the choice below is the same for rows seen twice.)
        where load_id in (
            select loads.load_id from {{ source('feed', 'feed_loads') }} as loads
            where
                loads.resource = 'certificates'
                and loads.finished_at > (
                    select coalesce(max(held.finished_at), '-infinity'::timestamptz)
                    from {{ source('feed', 'feed_loads') }} as held
                    where
                        held.resource = 'certificates'
                        and held.load_id in (select this.load_id from {{ this }} as this)
                )
        )
    {% endif %}
),

renamed as (
    -- the raw table's typed columns (ingest/land.py casts and checks each field once, while landing)
    select
        certificate_no,
        plan_no,
        institution_id,
        occupation_code,
        level,
        issued_on,
        -- personal data arrives pseudonymised (ingest/land.py); nothing else about the holder is kept
        holder_id_hash,
        updated_at,
        load_id
    from source
    where certificate_no is not null
),

versions as (
    select * from renamed
    {% if is_incremental() %}
        union all by name
        select * from {{ this }}
        where certificate_no in (select renamed.certificate_no from renamed)
    {% endif %}
)

select * from versions
qualify row_number() over (partition by certificate_no order by updated_at desc nulls last, load_id desc) = 1
