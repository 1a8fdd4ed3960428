with source as (
    select * from {{ source('feed', 'registered_occupations') }}
),

renamed as (
    select
        item ->> 'institution_id' as institution_id,
        item ->> 'occupation_code' as occupation_code,
        item ->> 'occupation_name' as occupation_name,
        item ->> 'work_type' as work_type,
        try_cast(item ->> 'registered_on' as date) as registered_on,
        try_cast(item ->> 'updated_at' as timestamptz) as updated_at,
        load_id
    from source
)

select * from renamed
where institution_id is not null and occupation_code is not null
qualify row_number() over (
    partition by institution_id, occupation_code order by updated_at desc nulls last, load_id desc
) = 1
