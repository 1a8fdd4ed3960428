-- R-CERT: certificates that exist as of D (issued_on ≤ D) with the latest lookup answer, whatever D is.
-- A view over int_all_certificates_with_latest_lookup (incremental, independent of D), so that a run for any
-- D, an earlier one in a backfill too, reads the same certificates a full rebuild would, at the cost of a filter.
{{ config(materialized='view') }}

with certificates as (
    select * from {{ ref('int_all_certificates_with_latest_lookup') }}
)

select
    certificate_no,
    plan_no,
    institution_id,
    occupation_code,
    level,
    issued_on,
    last_checked_at,
    is_queryable
from certificates
where issued_on <= {{ as_of() }}
