{#
    The provincial centre (350000), read from its one owner, the seed supervising_centres, never written as a
    literal: its code is the seed's one province-level code of GB/T 2260 (two digits, then 0000; a city's ends in
    00, and Pingtan's PT has none). pipeline/settings.py (province_code) and bi/access.py find it in the same seed
    by the same rule. The province's work list holds every centre's rows (work_items), and a rejected row that
    names no institution goes back to it (centre_record_returns); tests/province_centre_is_one_row.sql fails the
    build when the seed holds no such code or more than one.
#}

{# SQL: whether `code` is a province-level code. #}
{% macro is_province_code(code) -%}
    regexp_full_match({{ code }}, '[0-9]{2}0000')
{%- endmacro %}

{# SQL: the province's code, as a scalar subquery over the seed (DuckDB refuses one that finds two rows). #}
{% macro province_centre() -%}
    (
        select province.supervising_centre
        from {{ ref('supervising_centres') }} as province
        where {{ is_province_code('province.supervising_centre') }}
    )
{%- endmacro %}
