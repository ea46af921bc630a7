DROP TABLE node_metrics_5m;
DROP TABLE node_metrics;
DROP TABLE node_commands;
DROP TABLE node_certificates;
DROP TABLE nodes;
DROP TABLE enrollment_tokens;
DROP TABLE clusters;
DROP TABLE platform_ca;
