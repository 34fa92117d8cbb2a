-- Daily campaign performance, rendered by Airflow for the run's logical date.
INSERT INTO marketing.campaign_performance_daily (day, campaign_id, impressions, clicks, spend, conversions)
SELECT
    DATE '{{ ds }}' AS day,
    campaign_id,
    SUM(impressions),
    SUM(clicks),
    SUM(spend),
    SUM(conversions)
FROM marketing.ad_events
WHERE event_time >= TIMESTAMP '{{ data_interval_start }}'
  AND event_time < TIMESTAMP '{{ data_interval_end }}'
GROUP BY campaign_id;
