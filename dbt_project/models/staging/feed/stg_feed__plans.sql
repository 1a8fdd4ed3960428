with source as (
    select * from {{ source('feed', 'plans') }}
),

renamed as (
    select
        item ->> 'plan_no' as plan_no,
        item ->> 'institution_id' as institution_id,
        item ->> 'occupation_code' as occupation_code,
        item ->> 'occupation_name' as occupation_name,
        item ->> 'work_type' as work_type,
        try_cast(item ->> 'level' as integer) as level,
        try_cast(item ->> 'assessment_date' as date) as assessment_date,
        item ->> 'status' as status,
        try_cast(item ->> 'candidates' as integer) as candidates,
        try_cast(item ->> 'passed' as integer) as passed,
        try_cast(item ->> 'certificates_online' as boolean) as certificates_online,
        try_cast(item ->> 'updated_at' as timestamptz) as updated_at,
        load_id
    from source
)

select * from renamed
where plan_no is not null
qualify row_number() over (partition by plan_no order by updated_at desc nulls last, load_id desc) = 1
