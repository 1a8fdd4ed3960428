-- R-CERT: every certificate (its latest version) with its latest lookup answer, whatever its issued_on, so
-- that the table does not depend on D: int_certificates_with_latest_lookup keeps those issued by D. A
-- certificate never looked up has is_queryable = false.
-- Millions of rows at province scale, so it is incremental: a run re-decides only the certificates whose
-- version or lookup answers changed since the last run, and any D (a backfill's earlier day too) reads the same
-- table. `dbt build --full-refresh` rebuilds it (on_schema_change='fail' stops a run after a change to its
-- columns until then).
{{ config(materialized='incremental', unique_key='certificate_no', incremental_strategy='delete+insert',
          on_schema_change='fail') }}

with
{% if is_incremental() %}
    answered as (
        -- Lookup answers are stamped when fetched and each run's answers land in one transaction before dbt
        -- runs (ingest/lookups.py, one DAG run at a time), so every answer landed since the last run is newer
        -- than the newest answer held here.
        select distinct lookups.certificate_no
        from {{ ref('stg_feed__certificate_lookups') }} as lookups
        where lookups.checked_at > (
            select coalesce(max(this.last_checked_at), '-infinity'::timestamptz)
            from {{ this }} as this
        )
    ),
{% endif %}

certificates as (
    select * from {{ ref('stg_feed__certificates') }}
    {% if is_incremental() %}
        -- a version from a load not held here (load ids are unique per run: staging's row of a certificate
        -- changes only to a version of a later load), or a certificate with a new lookup answer
        where
            load_id not in (select distinct this.certificate_load_id from {{ this }} as this)
            or certificate_no in (select answered.certificate_no from answered)
    {% endif %}
),

lookups as (
    select
        certificate_no,
        arg_max(found, checked_at) as found,
        max(checked_at) as last_checked_at
    from {{ ref('stg_feed__certificate_lookups') }}
    {% if is_incremental() %}
        where certificate_no in (select certificates.certificate_no from certificates)
    {% endif %}
    group by certificate_no
)

select
    certificates.certificate_no,
    certificates.plan_no,
    certificates.institution_id,
    certificates.occupation_code,
    certificates.level,
    certificates.issued_on,
    lookups.last_checked_at,
    coalesce(lookups.found, false) as is_queryable,
    certificates.load_id as certificate_load_id
from certificates
left join lookups on certificates.certificate_no = lookups.certificate_no
