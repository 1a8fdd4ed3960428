{# Generic test: every value of the column is a code of `code_type` in the seed code_labels, the one list of each
   code set. With `separator`, the column holds codes joined by it ('' = none) and each one is checked. #}
{% test in_code_set(model, column_name, code_type, separator=none) %}
with checked as (
    select
        {% if separator -%}
            unnest(string_split(nullif({{ column_name }}, ''), '{{ separator }}'))
        {%- else -%}
            cast({{ column_name }} as varchar)
        {%- endif %} as code
    from {{ model }}
),

code_set as (
    select code from {{ ref('code_labels') }} where code_type = '{{ code_type }}'
)

select checked.code
from checked
where checked.code is not null
    and checked.code not in (select code from code_set)
{% endtest %}
