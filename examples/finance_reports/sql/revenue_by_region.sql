-- Revenue per region for the fiscal period computed by the DAG's `period` task.
{% set period = ti.xcom_pull(task_ids="period") %}
SELECT
    region,
    SUM(amount) AS revenue,
    COUNT(DISTINCT invoice_id) AS invoices
FROM finance.invoices
WHERE fiscal_year = {{ period["fiscal_year"] }}
  AND fiscal_month = {{ period["fiscal_month"] }}
GROUP BY region
ORDER BY revenue DESC;
