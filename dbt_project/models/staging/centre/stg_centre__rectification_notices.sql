with source as (
    select * from {{ source('centre', 'centre_rectification_notices') }}
),

renamed as (
    select
        notice_id,
        institution_id,
        issued_on,
        due_on,
        completed_on,
        source_file,
        row_number
    from source
)

select * from renamed
