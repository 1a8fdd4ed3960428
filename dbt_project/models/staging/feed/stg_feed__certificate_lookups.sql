-- a view: one reader (int_all_certificates_with_latest_lookup); a table would copy millions of answers a run
{{ config(materialized='view') }}

with source as (
    select * from {{ source('feed', 'certificate_lookups') }}
),

renamed as (
    select
        certificate_no,
        found,
        checked_at,
        load_id
    from source
)

select * from renamed
