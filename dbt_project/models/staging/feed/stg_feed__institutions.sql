with source as (
    select * from {{ source('feed', 'institutions') }}
),

renamed as (
    select
        item ->> 'institution_id' as institution_id,
        item ->> 'name' as institution_name,
        item ->> 'institution_type' as institution_type,
        item ->> 'registration_no' as registration_no,
        item ->> 'supervising_centre' as supervising_centre,
        item ->> 'region_code' as region_code,
        try_cast(item ->> 'registered_on' as date) as registered_on,
        try_cast(item ->> 'expires_on' as date) as expires_on,
        item ->> 'cohort' as cohort,
        item ->> 'status' as status,
        item ->> 'responsible_person' as responsible_person,
        item ->> 'responsible_phone' as responsible_phone,
        item ->> 'contact_person' as contact_person,
        item ->> 'contact_phone' as contact_phone,
        item ->> 'email' as email,
        item ->> 'address' as address,
        try_cast(item ->> 'updated_at' as timestamptz) as updated_at,
        load_id
    from source
)

-- the feed may repeat an item across pages and runs: keep the latest version of each key
select * from renamed
where institution_id is not null
qualify row_number() over (partition by institution_id order by updated_at desc nulls last, load_id desc) = 1
