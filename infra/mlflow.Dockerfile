# The MLflow tracking server of the compose stack: the same MLflow release the project tests
# against, with the PostgreSQL driver (backend store) and boto3 (MinIO/S3 artifact store).
FROM python:3.11.14-slim-bookworm
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1 MLFLOW_DISABLE_TELEMETRY=true
RUN pip install "mlflow==3.17.2" "psycopg2-binary==2.9.13" "boto3==1.43.117" \
 && useradd --create-home --uid 1000 mlflow
USER mlflow
WORKDIR /home/mlflow
EXPOSE 5000
CMD ["mlflow", "server", "--host", "0.0.0.0", "--port", "5000"]
