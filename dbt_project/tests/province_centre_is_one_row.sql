-- The seed supervising_centres holds exactly one province-level code, the one macros/province_centre.sql reads:
-- none would leave the province without its list, two would make every model that reads it fail.
select count(*) as province_codes
from {{ ref('supervising_centres') }}
where {{ is_province_code('supervising_centre') }}
having count(*) <> 1
