"""mlflow_bridge: MLflow's model registry in Keel's trail (webhooks and a one-off import)."""
