-- The supervising centres (docs/contract.md §3), one row each, published from the seed supervising_centres so
-- that the exports can make every centre its files, reminders or not, and BI tools can list the centres.
select
    supervising_centre,
    supervising_centre_zh,
    city_zh
from {{ ref('supervising_centres') }}
