with source as (
    select * from {{ source('feed', 'certificates') }}
),

renamed as (
    select
        item->>'certificate_no' as certificate_no,
        item->>'plan_no' as plan_no,
        item->>'institution_id' as institution_id,
        item->>'occupation_code' as occupation_code,
        try_cast(item->>'level' as integer) as level,
        try_cast(item->>'issued_on' as date) as issued_on,
        -- personal data arrives pseudonymised (ingest/land.py); nothing else about the holder is kept
        item->>'holder_id_hash' as holder_id_hash,
        try_cast(item->>'updated_at' as timestamptz) as updated_at,
        load_id
    from source
)

select * from renamed
where certificate_no is not null
qualify row_number() over (partition by certificate_no order by updated_at desc nulls last, load_id desc) = 1
