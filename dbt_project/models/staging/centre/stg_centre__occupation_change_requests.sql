with source as (
    select * from {{ source('centre', 'centre_occupation_change_requests') }}
),

renamed as (
    select
        request_id,
        institution_id,
        received_on,
        change_type,
        occupation_code,
        source_file,
        row_number
    from source
)

select * from renamed
