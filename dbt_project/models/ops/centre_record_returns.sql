-- The 退回清单: every centre-records row rejected by the latest load of D, with the centre that must fix it,
-- the supervising centre of the institution as written in the row; rows that name no institution of the feed
-- go to the province (350000, read from the seed supervising_centres: macros/province_centre.sql).
-- publish/returns.py renders one workbook per centre from it.
with latest_load as (
    select load_id
    from {{ ref('stg_pipeline__run_metrics') }}
    where step = 'load_centre_records' and as_of = {{ as_of() }}
    qualify row_number() over (order by recorded_at desc, load_id desc) = 1
),

rejected as (
    select quarantine.*
    from {{ ref('stg_centre__quarantine') }} as quarantine
    inner join latest_load on quarantine.load_id = latest_load.load_id
),

institutions as (
    select
        institution_id,
        supervising_centre
    from {{ ref('stg_feed__institutions') }}
    qualify row_number() over (partition by institution_id order by updated_at desc nulls last, load_id desc) = 1
)

select
    coalesce(institutions.supervising_centre, {{ province_centre() }}) as supervising_centre,
    rejected.source_file,
    rejected.row_number,
    rejected.field,
    rejected.record_kind,
    rejected.sheet,
    rejected.institution_id,
    institutions.institution_id is not null as institution_in_feed,
    rejected.column_header,
    rejected.reason_zh,
    rejected.expected_zh,
    rejected.reason,
    rejected.cells,
    {{ as_of() }} as as_of,
    rejected.load_id
from rejected
left join institutions on rejected.institution_id = institutions.institution_id
