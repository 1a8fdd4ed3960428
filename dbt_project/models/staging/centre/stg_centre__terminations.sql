with source as (
    select * from {{ source('centre', 'centre_terminations') }}
),

renamed as (
    select
        institution_id,
        notified_on,
        reason,
        source_file,
        row_number
    from source
)

select * from renamed
