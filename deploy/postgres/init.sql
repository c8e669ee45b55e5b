-- One server, two databases: mlwatch's store and MLflow's tracking store.
CREATE DATABASE mlwatch;
CREATE DATABASE mlflow;
