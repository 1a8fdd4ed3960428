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
